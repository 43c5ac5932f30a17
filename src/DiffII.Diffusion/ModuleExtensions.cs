using TorchSharp;

namespace DiffII.Diffusion;

public static class ModuleExtensions
{
    /// <summary>Stops gradients for every parameter of <paramref name="module"/> (PyTorch's requires_grad_(False)).</summary>
    public static T Freeze<T>(this T module) where T : torch.nn.Module
    {
        foreach (var p in module.parameters()) p.requires_grad = false;
        return module;
    }

    /// <summary>
    /// Takes a module's parameters and buffers out of any open dispose scope. TorchSharp attaches the tensors of a
    /// module built inside <c>NewDisposeScope()</c> to that scope, so the module would lose its weights when the
    /// scope ends; models are long-lived and must not.
    /// </summary>
    public static T DetachFromDisposeScopes<T>(this T module) where T : torch.nn.Module
    {
        foreach (var parameter in module.parameters()) parameter.DetachFromDisposeScope();
        foreach (var buffer in module.buffers()) buffer.DetachFromDisposeScope();
        return module;
    }
}
