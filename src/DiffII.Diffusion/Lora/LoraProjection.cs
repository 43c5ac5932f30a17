using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Lora;

/// <summary>
/// A low-rank update of one attention projection: <c>Δ(x) = up(down(x)) · alpha / rank</c> (alpha = rank when
/// the file gives none, as in diffusers). <c>down</c> starts Gaussian with std 1/rank and <c>up</c> at zero, so a
/// fresh adapter changes nothing until it is trained.
/// </summary>
public sealed class LoraProjection : nn.Module<Tensor, Tensor>, IProjectionAdapter
{
#pragma warning disable IDE1006 // PyTorch names, so state-dict keys read "down.weight" / "up.weight"
    public readonly Linear down;
    public readonly Linear up;
#pragma warning restore IDE1006

    public LoraProjection(long inFeatures, long outFeatures, int rank, double? networkAlpha = null, Device? device = null, ScalarType dtype = ScalarType.Float32, Generator? generator = null)
        : base(nameof(LoraProjection))
    {
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), "The LoRA rank must be positive.");
        Rank = rank;
        NetworkAlpha = networkAlpha;
        down = nn.Linear(inFeatures, rank, hasBias: false, device: device, dtype: dtype);
        up = nn.Linear(rank, outFeatures, hasBias: false, device: device, dtype: dtype);
        using (no_grad())
        {
            down.weight!.normal_(0, 1.0 / rank, generator);
            up.weight!.zero_();
        }
        RegisterComponents();
        this.DetachFromDisposeScopes();
    }

    public int Rank { get; }
    public double? NetworkAlpha { get; }
    public long InFeatures => down.weight!.shape[1];
    public long OutFeatures => up.weight!.shape[0];

    /// <summary>alpha / rank, or 1 without an alpha.</summary>
    public double Multiplier => NetworkAlpha is double alpha ? alpha / Rank : 1.0;

    public override Tensor forward(Tensor input)
    {
        var weightType = down.weight!.dtype;
        using var scope = NewDisposeScope();
        var x = input.dtype == weightType ? input : input.to(weightType);
        var delta = up.call(down.call(x));
        if (Multiplier != 1.0) delta = delta.Mul(Multiplier);
        return scope.MoveToOuter(delta.dtype == input.dtype ? delta : delta.to(input.dtype));
    }

    public Tensor Delta(Tensor input) => forward(input);

    /// <summary>The dense update this adapter adds to the projection's weight: multiplier · up @ down, [out, in].</summary>
    public Tensor WeightDelta()
    {
        using var scope = NewDisposeScope();
        var w = mm(up.weight!, down.weight!);
        return scope.MoveToOuter(Multiplier == 1.0 ? w : w.Mul(Multiplier));
    }
}
