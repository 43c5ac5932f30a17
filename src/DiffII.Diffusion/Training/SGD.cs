using DiffII.Diffusion.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Training;

/// <summary>
/// TorchSharp's SGD (momentum, dampening, Nesterov, weight decay; same state and checkpoint format) whose step holds
/// every <see cref="Scalar"/> alive while libtorch uses it. See <see cref="AdamW"/> for why, and for its name.
/// </summary>
public sealed class SGD : TorchSharp.Modules.SGD
{
    public SGD(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double dampening = 0,
        double weight_decay = 0, bool nesterov = false)
        : base(parameters, lr, momentum, dampening, weight_decay, nesterov)
    {
    }

    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = group.Options;
        double momentum = options.momentum!.Value, dampening = options.dampening!.Value;
        double weightDecay = options.weight_decay!.Value, lr = options.LearningRate!.Value;
        bool nesterov = options.nesterov == true, maximize = options.maximize == true;
        foreach (var param in group.Parameters)
        {
            var grad = param.grad;
            if (grad is null) continue;
            var state = (State)_state[param.Handle];
            if (weightDecay != 0) grad = grad.Add(param, weightDecay);
            if (momentum != 0)
            {
                var buffer = state.momentum_buffer;
                if (buffer is null)
                {
                    buffer = grad.clone().detach().DetachFromDisposeScope();
                    state.momentum_buffer = buffer;
                }
                else
                {
                    buffer.Mul_(momentum).Add_(grad, 1 - dampening);
                }
                grad = nesterov ? grad.Add(buffer, momentum) : buffer;
            }
            param.Add_(grad, maximize ? lr : -lr);
        }
    }, closure);
}
