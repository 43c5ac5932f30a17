using DiffII.Diffusion.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Training;

/// <summary>
/// TorchSharp's AdamW (same options, parameter groups, state and checkpoint format; torch.optim.AdamW's update) whose
/// step holds every <see cref="Scalar"/> alive while libtorch uses it.
/// </summary>
/// <remarks>
/// Why: TorchSharp's own step passes numbers such as <c>1 - beta1</c> and <c>-step_size</c> as temporary Scalars that a
/// garbage collection on another thread can free mid-call (see <see cref="KeptScalars"/>), which corrupts a
/// parameter update. The arithmetic here is TorchSharp 0.107's, operation for operation, so results are bit-identical
/// to it whenever no collection intervenes. The class is called AdamW because TorchSharp's checkpoints name the
/// optimizer's type (without namespace) and refuse to load into another: so checkpoints written by either load into
/// the other, and interrupted runs from before this class resume.
/// </remarks>
public sealed class AdamW : TorchSharp.Modules.AdamW
{
    public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 0)
        : base(parameters, lr, beta1, beta2, eps, weight_decay)
    {
    }

    public AdamW(IEnumerable<ParamGroup> groups) : base(groups)
    {
    }

    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = group.Options;
        double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, eps = options.eps!.Value;
        double weightDecay = options.weight_decay!.Value, lr = options.LearningRate!.Value;
        if (options.amsgrad == true)
            throw new NotSupportedException("DiffII.Diffusion.Training.AdamW does not implement amsgrad; nothing in DiffII uses it.");
        bool maximize = options.maximize == true;
        foreach (var param in group.Parameters)
        {
            var grad = param.grad;
            if (grad is null) continue;
            if (maximize) grad = -grad;
            var state = (State)_state[param.Handle];
            state.step += 1;

            param.Mul_(1 - lr * weightDecay);
            double biasCorrection1 = 1 - Math.Pow(beta1, state.step);
            double biasCorrection2 = 1 - Math.Pow(beta2, state.step);
            state.exp_avg.Mul_(beta1).Add_(grad, 1 - beta1);
            state.exp_avg_sq.Mul_(beta2).AddCMul_(grad, grad, 1 - beta2);
            var denom = state.exp_avg_sq.sqrt().Div(Math.Sqrt(biasCorrection2)).Add_(eps);
            param.AddCDiv_(state.exp_avg, denom, -(lr / biasCorrection1));
        }
    }, closure);
}
