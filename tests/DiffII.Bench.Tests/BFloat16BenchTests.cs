using System.Text.Json;
using DiffII.Bench;
using DiffII.Diffusion.Pipelines;
using static TorchSharp.torch;

namespace DiffII.Bench.Tests;

/// <summary>The bf16 section: it measures both dtypes and reports the generated latents' error (no timings asserted).</summary>
public sealed class BFloat16BenchTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-bench-bf16-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    [Fact]
    public void Bf16Section_WritesKernelAndModelRows_WithTheLatentError()
    {
        var options = BenchOptions.Parse(["--model", "tiny", "--batches", "1", "--sections", "bf16", "--matmul", "128"])
            with { Shared = SharedData.Path(), Out = _root };
        Assert.Equal(0, BenchRun.Execute(options, ["--sections", "bf16"], new StringWriter()));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, "results.json")));
        var rows = json.RootElement.GetProperty("optimisations").EnumerateArray().Where(o => o.GetProperty("name").GetString() == BFloat16Bench.Name).ToList();
        Assert.Equal(["kernel", "kernel", "tiny"], rows.Select(r => r.GetProperty("model").GetString()));
        Assert.All(rows, r => Assert.True(r.GetProperty("optimisedSeconds").GetDouble() > 0 && r.GetProperty("baselineSeconds").GetDouble() > 0));
        Assert.Contains("final latents' max error", rows[2].GetProperty("note").GetString());
    }

    [Fact]
    public void LatentError_IsZeroForTheSameModel_AndSmallButNonZeroInBFloat16()
    {
        string scratch = Path.Combine(_root, "scratch");
        // Both load one saved folder: two seeded builds could differ when another test draws from the global generator.
        string folder = BenchRun.SavedRandomTiny(SharedData.Path(), scratch, CPU);
        using var float32 = StableDiffusion.Load(folder, new StableDiffusionLoadOptions { DType = ScalarType.Float32 });
        using var bfloat16 = StableDiffusion.Load(folder, new StableDiffusionLoadOptions { DType = ScalarType.BFloat16 });
        var same = BFloat16Bench.LatentError(float32, float32, "tiny", 32, batch: 2, steps: 3, guidance: 7.5);
        Assert.Equal(0, same.MaxAbsError);
        var error = BFloat16Bench.LatentError(float32, bfloat16, "tiny", 32, batch: 2, steps: 3, guidance: 7.5);
        Assert.InRange(error.RelativeRms, 1e-4, 0.1);
        Assert.True(error.MaxAbsFloat32 > 0);
    }
}
