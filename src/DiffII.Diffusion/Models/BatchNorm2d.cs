using DiffII.Diffusion.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Models;

/// <summary>
/// Batch normalisation over [N, C, H, W] with running statistics, as torch.nn.BatchNorm2d (affine, momentum 0.1,
/// ε 1e-5 by default). Parameters and buffers carry PyTorch's names (<c>weight</c>, <c>bias</c>, <c>running_mean</c>,
/// <c>running_var</c>, <c>num_batches_tracked</c>), so state dicts of torchvision models load without a key map.
/// </summary>
/// <remarks>
/// Why not TorchSharp's BatchNorm2d: in training its forward counts batches with <c>num_batches_tracked.add_(1)</c>,
/// a temporary Scalar that a garbage collection on another thread can free while libtorch reads it (see
/// <see cref="KeptScalars"/>); on an integer tensor that surfaces as "For integral input tensors, argument alpha must
/// not be a floating point number". The normalisation itself is libtorch's batch_norm, as there.
/// </remarks>
public sealed class BatchNorm2d : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // PyTorch names, so state-dict keys match
    public Parameter weight;
    public Parameter bias;
    public Tensor running_mean;
    public Tensor running_var;
    public Tensor num_batches_tracked;
#pragma warning restore IDE1006

    public long NumFeatures { get; }
    public double Eps { get; }
    public double Momentum { get; }

    public BatchNorm2d(long numFeatures, double eps = 1e-5, double momentum = 0.1, Device? device = null, ScalarType? dtype = null)
        : base(nameof(BatchNorm2d))
    {
        NumFeatures = numFeatures;
        Eps = eps;
        Momentum = momentum;
        weight = new Parameter(ones(numFeatures, dtype, device));
        bias = new Parameter(zeros(numFeatures, dtype, device));
        running_mean = zeros(numFeatures, dtype, device);
        running_var = ones(numFeatures, dtype, device);
        num_batches_tracked = zeros([], ScalarType.Int64, device);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 4)
            throw new ArgumentException($"BatchNorm2d expects a 4-D input [N, C, H, W]; got [{string.Join(", ", input.shape)}].", nameof(input));
        if (input.shape[1] != NumFeatures)
            throw new ArgumentException($"BatchNorm2d has {NumFeatures} channels; the input has {input.shape[1]}.", nameof(input));
        if (training)
        {
            using var _ = no_grad();
            num_batches_tracked.Add_(1);
        }
        return nn.functional.batch_norm(input, running_mean, running_var, weight, bias, training, Momentum, Eps);
    }
}
