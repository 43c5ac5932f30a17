using DiffII.Diffusion.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace DiffII.Testing;

/// <summary>Finds the read-only ../shared folder (beside the repository in CI; above a git worktree elsewhere).</summary>
public static class SharedData
{
    static readonly Lazy<string> Root = new(Find);

    /// <summary>The shared/ folder. Set DIFFII_SHARED to point elsewhere.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine([Root.Value, .. parts]);

    public static string TinyA(params string[] parts) => Path(["data", "golden", "sd-tiny-a", .. parts]);

    static string Find()
    {
        string? env = Environment.GetEnvironmentVariable("DIFFII_SHARED");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = System.IO.Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(System.IO.Path.Combine(candidate, "data", "golden"))) return candidate;
        }
        throw new DirectoryNotFoundException("The shared/ data folder was not found above " + AppContext.BaseDirectory + "; set DIFFII_SHARED.");
    }
}

/// <summary>Element-wise comparison |got − expected| ≤ atol + rtol·|expected|, with a message that finds the worst element.</summary>
public static class TensorAssert
{
    public static void Close(Tensor expected, Tensor got, double atol, double rtol, string what)
    {
        Assert.Equal(expected.shape, got.shape);
        using var e = expected.to(ScalarType.Float64).cpu();
        using var g = got.to(ScalarType.Float64).cpu();
        using var diff = (g - e).abs();
        using var bound = e.abs().Mul(rtol).Add(atol);
        using var excess = diff - bound;
        double worst = excess.max().item<double>();
        if (worst > 0 || double.IsNaN(worst) || g.isnan().any().item<bool>())
        {
            long flat = excess.flatten().argmax().item<long>();
            Assert.Fail($"{what}: {(diff > bound).sum().item<long>()} of {e.NumberOfElements} elements out of tolerance (atol {atol}, rtol {rtol}); " +
                        $"max |diff| = {diff.max().item<double>():G4}; worst at flat index {flat}: expected {e.flatten()[flat].item<double>():G6}, got {g.flatten()[flat].item<double>():G6}");
        }
    }
}
