using System.Globalization;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Training;

/// <summary>
/// Says where a training step's numbers stopped being finite, for the message a diverged run stops with: the weights
/// and gradients that are not finite, and, by running the forward pass again under forward hooks, the first module
/// whose output is not finite and whether its input was.
/// </summary>
/// <remarks>
/// Hooks fire for modules run through <c>call</c> (TorchSharp's layers, and the engine's single-tensor blocks); the
/// engine's multi-argument blocks are run through <c>forward</c>, so the trace names the layer inside them. When the
/// first non-finite output comes from a module whose input was finite, that module made it; when its input was
/// already non-finite, an operation between the last finite module and it did (an attention product, an addition).
/// </remarks>
public static class NonFiniteTrace
{
    /// <summary>How many names a list in the description holds before it says "and N more".</summary>
    const int NamesShown = 5;

    /// <summary>
    /// Describes the non-finite weights and gradients of <paramref name="roots"/>, then reruns <paramref name="forward"/>
    /// (without gradients) and names the first module whose output is not finite. Deterministic steps give the same
    /// values again; a step that turns finite on the rerun is said to be so.
    /// </summary>
    public static string Describe(IReadOnlyList<(string Name, nn.Module Module)> roots, Action forward)
    {
        var text = new StringBuilder();
        var weights = new List<string>();
        var gradients = new List<string>();
        (string Name, double Value) largest = ("", 0);
        using (no_grad())
        {
            foreach (var (rootName, root) in roots)
                foreach (var (name, parameter) in root.named_parameters())
                {
                    string full = Join(rootName, name);
                    using var scope = NewDisposeScope();
                    if (!parameter.isfinite().all().item<bool>()) weights.Add(full);
                    else
                    {
                        double max = parameter.abs().max().item<float>();
                        if (max > largest.Value) largest = (full, max);
                    }
                    if (parameter.grad is { } grad && !grad.isfinite().all().item<bool>()) gradients.Add(full);
                }
        }
        text.Append(weights.Count == 0
            ? $"Every weight is finite (largest |w| {largest.Value.ToString("G4", CultureInfo.InvariantCulture)} in {largest.Name}). "
            : $"Non-finite weights: {Names(weights)}. ");
        if (gradients.Count > 0) text.Append($"Non-finite gradients: {Names(gradients)}. ");
        text.Append(FirstNonFiniteOutput(roots, forward));
        return text.ToString();
    }

    /// <summary>The first module, in the order the forward pass runs them, whose output is not finite.</summary>
    static string FirstNonFiniteOutput(IReadOnlyList<(string Name, nn.Module Module)> roots, Action forward)
    {
        var removers = new List<Action>();
        string? lastFinite = null, found = null;
        foreach (var (rootName, root) in roots)
            foreach (var (name, module) in new[] { ("", root) }.Concat(root.named_modules().Select(m => (m.name, m.module))))
            {
                if (module is not nn.Module<Tensor, Tensor> hookable) continue;
                string full = Join(rootName, name);
                removers.Add(hookable.register_forward_hook((_, input, output) =>
                {
                    if (found is not null) return output;
                    using var scope = NewDisposeScope();
                    if (output.isfinite().all().item<bool>()) lastFinite = full;
                    else found = input.isfinite().all().item<bool>()
                        ? $"The forward pass first turns finite input into {Kind(output)} in {full}."
                        : $"The forward pass first shows {Kind(input)} at the input of {full}, made after {lastFinite ?? "the start"} by an operation between the two.";
                    return output;
                }).remove);
            }
        try
        {
            using (no_grad())
            using (NewDisposeScope())
                forward();
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        return found ?? "Rerun without gradients, the forward pass stayed finite in every hooked module (the non-finite values come from the backward pass or the loss).";
    }

    static string Kind(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        return tensor.isnan().any().item<bool>() ? "NaN" : "±Infinity";
    }

    static string Join(string root, string name) => name.Length == 0 ? root : root.Length == 0 ? name : root + "." + name;

    static string Names(List<string> names) => names.Count <= NamesShown
        ? string.Join(", ", names)
        : string.Join(", ", names.Take(NamesShown)) + $" and {names.Count - NamesShown} more";
}
