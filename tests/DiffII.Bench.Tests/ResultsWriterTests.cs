using System.Text.Json;
using DiffII.Bench;

namespace DiffII.Bench.Tests;

public sealed class ResultsWriterTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-bench-results-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    static MachineInfo Machine(bool cuda) => new()
    {
        CpuModel = "Test CPU @ 2.0GHz", LogicalCores = 2, TorchThreads = 2, Os = "Linux", DotnetVersion = ".NET 10", TorchSharpVersion = "0.107.0",
        Backend = cuda ? "cuda" : "cpu", Device = cuda ? "cuda" : "cpu", DType = "float32", CudaMeasured = cuda, GpuName = cuda ? "Test GPU 80GB" : null,
        MemoryTotalBytes = 24L << 30, StartedUtc = "2026-12-01T12:00:00Z", CommandLine = "dotnet run --project bench/DiffII.Bench -c Release -- --profile full",
        Profile = "full",
    };

    static BenchReport Report(bool cuda) => new()
    {
        Machine = Machine(cuda),
        Peaks = [new PeakResult("matmul", "4096×4096", 3, 1.0, 0.9, 137.4, 137.4), new PeakResult("conv", "3×3", 3, 0.2, 0.2, 15.1, 75.5)],
        Stages =
        [
            new StageResult { Model = "sd15", Resolution = 512, Stage = "guided-step", Batch = 1, Repetitions = 2, MedianSeconds = 20, MinSeconds = 19,
                SamplesPerSecond = 0.05, Gflop = 1600, GflopPerSecond = 80, FractionOfPeak = 80 / 137.4, PeakRssBytes = 6L << 30, RssIncreaseBytes = 1L << 30,
                Note = "one DDIM step, with a comma" },
            new StageResult { Model = "sd15", Resolution = 256, Stage = "guided-step", Batch = 1, Repetitions = 3, MedianSeconds = 6, MinSeconds = 5.5,
                SamplesPerSecond = 1 / 6.0, Gflop = 400, GflopPerSecond = 66.7, FractionOfPeak = 66.7 / 137.4, PeakRssBytes = 5L << 30, RssIncreaseBytes = 1L << 29 },
            new StageResult { Model = "sd15", Resolution = 512, Stage = "train-step", Batch = 8, Skipped = "predicted 30 GiB more resident memory, over 85 % of the 22 GiB available" },
        ],
        Scaling = [new ScalingPoint { Axis = "expansion", Classes = 4, Shots = 5, Expansion = 1, SyntheticImages = 20, Inversions = 20, LearnSeconds = 1, InvertSeconds = 2, GenerateSeconds = 3, PeakRssBytes = 1 << 30 }],
    };

    [Fact]
    public void CsvFields_AreQuotedOnlyWhenNeeded()
    {
        Assert.Equal("plain", ResultsWriter.CsvField("plain"));
        Assert.Equal("\"a, b\"", ResultsWriter.CsvField("a, b"));
        Assert.Equal("\"say \"\"hi\"\"\"", ResultsWriter.CsvField("say \"hi\""));
        Assert.Equal("", ResultsWriter.CsvField(null));
    }

    [Fact]
    public void Write_ProducesParseableJson_CsvRowsAndASummary()
    {
        ResultsWriter.Write(Report(cuda: false), _root);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_root, "results.json")));
        Assert.Equal("Test CPU @ 2.0GHz", json.RootElement.GetProperty("machine").GetProperty("cpuModel").GetString());
        Assert.False(json.RootElement.GetProperty("machine").GetProperty("cudaMeasured").GetBoolean());
        Assert.Equal(3, json.RootElement.GetProperty("stages").GetArrayLength());
        Assert.Equal(137.4, json.RootElement.GetProperty("peakGflopPerSecond").GetDouble());

        var csv = File.ReadAllLines(Path.Combine(_root, "results.csv"));
        Assert.Equal(4, csv.Length);
        Assert.StartsWith("model,resolution,stage,batch", csv[0]);
        Assert.StartsWith("sd15,512,guided-step,1,2,20,19,", csv[1]);
        Assert.EndsWith(",\"one DDIM step, with a comma\"", csv[1]);
        Assert.Contains("\"predicted 30 GiB more resident memory, over 85 % of the 22 GiB available\"", csv[3]);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(_root, "scaling.csv")).Length);
        Assert.False(File.Exists(Path.Combine(_root, "memory.csv")));

        string summary = File.ReadAllText(Path.Combine(_root, "summary.md"));
        Assert.Contains("dotnet run --project bench/DiffII.Bench -c Release -- --profile full", summary);
        Assert.Contains("GPU numbers were not measured", summary);
        Assert.Contains("Test CPU @ 2.0GHz", summary);
        var lines = summary.Split('\n');
        Assert.Contains(lines, line => line.Contains("sd15") && line.Contains("512") && line.Contains("58 %") && line.TrimEnd().EndsWith("| yes    |"));
        Assert.Contains(lines, line => line.Contains("sd15") && line.Contains("256") && line.Contains("49 %") && line.Contains("**no**"));
        Assert.Contains("predicted 30 GiB more resident memory", summary);
    }

    [Fact]
    public void Summary_NamesTheGpu_WhenCudaWasMeasured()
    {
        string summary = SummaryMarkdown.Render(Report(cuda: true));
        Assert.Contains("GPU: Test GPU 80GB (measured)", summary);
        Assert.DoesNotContain("not measured", summary);
    }

    [Fact]
    public void Summary_SaysWhenOtherProcessesLoadedTheMachine()
    {
        var report = Report(false) with { Machine = Machine(false) with { OtherLoad = ["pid 7 using 1.9 cores: trainer"] } };
        Assert.Contains("Other load when the run started", SummaryMarkdown.Render(report));
        Assert.Contains("pid 7 using 1.9 cores: trainer", SummaryMarkdown.Render(report));
    }
}
