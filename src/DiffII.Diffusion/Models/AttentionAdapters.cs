using static TorchSharp.torch;

#pragma warning disable CS1573 // only the parameters that need explaining get a <param> tag

namespace DiffII.Diffusion.Models;

/// <summary>
/// A learned correction to one attention projection (e.g. a LoRA pair): given the projection's input it returns
/// what to add to the projection's output.
/// </summary>
public interface IProjectionAdapter
{
    Tensor Delta(Tensor input);
}

/// <summary>
/// Corrections to the four projections of one <see cref="Attention"/>. Not a module: attaching adapters leaves the
/// model's state-dict keys untouched, so base checkpoints keep loading strictly.
/// </summary>
public sealed class AttentionAdapters
{
    public IProjectionAdapter? Q, K, V, Out;
    /// <summary>Multiplies every delta (diffusers' <c>cross_attention_kwargs["scale"]</c>).</summary>
    public double Scale = 1.0;
}
