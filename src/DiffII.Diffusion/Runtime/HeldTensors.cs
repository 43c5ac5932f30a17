using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Runtime;

/// <summary>
/// Keeps every tensor made on this thread alive until disposed, then leaves each where it would have been without
/// it: in the enclosing dispose scope, or to the GC when there is none. Nothing is disposed, so code inside behaves
/// exactly as before; only temporaries live a little longer.
/// </summary>
/// <remarks>
/// <para>Why: TorchSharp 0.107 frees a tensor's native object in its finalizer, and a temporary such as the
/// <c>detach()</c> in <c>x.detach().to(CPU).clamp(-1, 1)</c> is unreachable from the moment its handle is passed to
/// the next native call. A collection on any other thread then finalizes it while libtorch still uses it: a
/// use-after-free that gives wrong numbers (a non-finite concept-learning step, a flipped accuracy) or corrupts the
/// heap (a crash at the end of a long run, with a garbled stack trace). Reproduced on 2026-12-06: that chain summed
/// wrong or segfaulted within 200 000 iterations beside a collecting thread, and ran clean inside a scope. (Scalars
/// have the same fault: <see cref="KeptScalars"/>.)</para>
/// <para>Long work opens one at its entry (the CLI around every step; the augmenter and the fine-tuning trainer
/// around their public calls). Loops inside keep their own dispose scopes, so what accumulates here is only what is
/// made outside them.</para>
/// </remarks>
public sealed class HeldTensors : IDisposable
{
    readonly DisposeScope _scope = NewDisposeScope();

    /// <summary>Starts holding the tensors this thread makes.</summary>
    public static HeldTensors Hold() => new();

    HeldTensors() { }

    public void Dispose()
    {
        _scope.MoveToOuter(_scope.DisposablesView.ToList());
        _scope.Dispose();
    }
}
