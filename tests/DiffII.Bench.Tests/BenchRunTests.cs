using System.Text.Json;
using DiffII.Bench;
using DiffII.Diffusion.Pipelines;
using static TorchSharp.torch;

namespace DiffII.Bench.Tests;

/// <summary>The benchmark end to end on the tiny architecture (no timings are asserted: only that it measures and reports).</summary>
public sealed class BenchRunTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-bench-run-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    [Fact]
    public void TinyRun_WritesEveryStageWithFlops_AndAMemoryVerdict()
    {
        var options = BenchOptions.Parse(["--model", "tiny", "--batches", "1,2", "--sections", "stages,memory", "--memory-images", "32", "--matmul", "128"])
            with { Shared = SharedData.Path(), Out = _root };
        var log = new StringWriter();
        Assert.Equal(0, BenchRun.Execute(options, ["--model", "tiny"], log));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, "results.json")));
        var stages = json.RootElement.GetProperty("stages").EnumerateArray().ToList();
        var names = stages.Select(s => s.GetProperty("stage").GetString()).Distinct().ToList();
        Assert.Equal(["text-encode", "vae-encode", "inversion-step", "guided-step", "vae-decode", "train-step"], names);
        Assert.Equal(12, stages.Count);
        Assert.All(stages, s =>
        {
            Assert.Equal(JsonValueKind.Null, s.GetProperty("skipped").ValueKind);
            Assert.True(s.GetProperty("gflop").GetDouble() > 0, $"{s.GetProperty("stage")} has counted FLOPs");
            Assert.True(s.GetProperty("medianSeconds").GetDouble() > 0);
        });
        // FLOPs grow exactly with the batch for the U-Net steps.
        double Gflop(string stage, int batch) => stages.Single(s => s.GetProperty("stage").GetString() == stage && s.GetProperty("batch").GetInt32() == batch).GetProperty("gflop").GetDouble();
        Assert.Equal(2 * Gflop("guided-step", 1), Gflop("guided-step", 2), 9);
        Assert.Equal(2 * Gflop("inversion-step", 1), Gflop("guided-step", 1), 9);

        var memory = json.RootElement.GetProperty("memory");
        Assert.True(memory.GetProperty("images").GetInt32() >= 32);
        Assert.True(memory.GetProperty("samples").GetArrayLength() >= 4);
        Assert.Equal(2, json.RootElement.GetProperty("peaks").GetArrayLength());
        foreach (var file in new[] { "results.csv", "memory.csv", "summary.md" }) Assert.True(File.Exists(Path.Combine(_root, file)), file);
        Assert.Contains("## tiny at 32 px", File.ReadAllText(Path.Combine(_root, "summary.md")));
    }

    [Fact]
    public void HalfPrecisionPath_BuildsAndDenoises_OnTheCpu()
    {
        // The GPU runs in float16/bfloat16; the dtype plumbing is the same code on the CPU, checked here in bfloat16.
        string scratch = Path.Combine(_root, "scratch");
        using var sd = BenchModels.Build("tiny", SharedData.Path(), scratch, CPU, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, sd.DType);
        Assert.All(sd.Unet.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        using var _ = no_grad();
        var text = sd.EncodePrompts(["a photo of a red shirt"]);
        var uncond = sd.EncodePrompts([""]);
        Assert.Equal(ScalarType.BFloat16, text.dtype);
        var x = randn(2, sd.LatentChannels, 8, 8, dtype: ScalarType.BFloat16);
        var y = Sampling.Ddim(sd, x, Sampling.Constant(text), uncond, 7.5, 25, startIndex: 24);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        Assert.True(y.isfinite().all().item<bool>());
        var images = sd.DecodeLatents(y);
        Assert.Equal(new long[] { 2, 3, 32, 32 }, images.shape);
    }
}
