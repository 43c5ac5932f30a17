using DiffII.Bench;
using static TorchSharp.torch;

namespace DiffII.Bench.Tests;

public class FineTuneBenchTests
{
    [Fact]
    public void MeasuresTrainingAndInferenceWithCountedFlopsAgainstTheConvPeak()
    {
        var report = new BenchReport { Machine = null! };
        report.Peaks.Add(new PeakResult("conv", "test", 1, 1, 1, 10, 10));
        var harness = new Harness(CPU, RepetitionPolicy.Quick, TextWriter.Null);
        new FineTuneBench(harness, report, TextWriter.Null).Run([64], batch: 2, ScalarType.Float32);

        var rows = report.Stages.ToDictionary(s => s.Stage);
        Assert.Equal(["finetune-infer-onnx", "finetune-infer-torch", "finetune-train-step"], rows.Keys.Order());
        // The packaged ResNet-18 ([2, 2, 2, 3] blocks) costs 4.09 GFLOP per image at 224 px; 64 px is (64/224)² of that.
        double perImage = rows["finetune-infer-torch"].Gflop!.Value / 2;
        Assert.InRange(perImage, 0.32, 0.35);
        Assert.Equal(perImage, rows["finetune-infer-onnx"].Gflop!.Value, 6);
        Assert.Equal(3 * rows["finetune-infer-torch"].Gflop!.Value, rows["finetune-train-step"].Gflop!.Value, 6);
        Assert.All(rows.Values, r => Assert.Equal(r.GflopPerSecond!.Value / 10, r.FractionOfPeak!.Value, 9));
        Assert.All(rows.Values, r => Assert.True(r.SamplesPerSecond > 0));
    }
}
