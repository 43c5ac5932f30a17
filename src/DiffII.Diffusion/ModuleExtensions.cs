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
}
