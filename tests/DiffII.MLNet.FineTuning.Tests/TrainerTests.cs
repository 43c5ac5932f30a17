using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.FineTuning.Tests;

/// <summary>One small fine-tuning run (trouser vs bag, 64 px, 2 epochs) shared by the tests that inspect its model.</summary>
public sealed class TwoClassRun : IDisposable
{
    public TwoClassData Data { get; } = new();
    public MLContext Ml { get; } = new(0);
    public ITransformer Model { get; }
    public FineTuneReport Report { get; }
    public List<FineTuneProgress> ProgressReports { get; } = [];

    public TwoClassRun()
    {
        var trainer = Ml.MulticlassClassification.Trainers.ResNet18FineTune(new ResNet18FineTuneOptions
        {
            ImageSize = 64, BatchSize = 16, Epochs = 2, LearningRate = 3e-4, Seed = 1,
            Progress = new SynchronousProgress<FineTuneProgress>(ProgressReports.Add),
        });
        Model = trainer.Fit(TwoClassData.Keyed(Ml, Data.Train));
        Report = trainer.LastReport!;
    }

    public void Dispose() => Data.Dispose();
}

/// <summary>An IProgress that reports on the caller's thread, so a test sees every report before Fit returns.</summary>
public sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

[Collection(TorchSeedCollection.Name)]
public sealed class TrainerTests(TwoClassRun run) : IClassFixture<TwoClassRun>
{
    static double Accuracy(MLContext ml, ITransformer model, IDataView data)
    {
        var scored = model.Transform(data);
        var labels = scored.GetColumn<uint>("Label").ToArray();
        var predicted = scored.GetColumn<uint>("PredictedLabel").ToArray();
        return (double)labels.Zip(predicted).Count(p => p.First == p.Second) / labels.Length;
    }

    [Fact]
    public void LearnsTwoClassesToAtLeast95PercentOnHeldOutImages()
    {
        var test = TwoClassData.Keyed(run.Ml, run.Data.Test);
        double accuracy = Accuracy(run.Ml, run.Model, test);
        Assert.True(accuracy >= 0.95, $"Held-out accuracy {accuracy:P1} on {run.Data.Test.Count} images (epoch losses {string.Join(", ", run.Report.EpochLosses.Select(l => l.ToString("F3")))}).");
        var metrics = run.Ml.MulticlassClassification.Evaluate(run.Model.Transform(test));
        Assert.Equal(accuracy, metrics.MicroAccuracy, 6);
    }

    [Fact]
    public void ReportsProgressEveryStepAndEveryEpoch()
    {
        Assert.Equal(2, run.Report.EpochsRun);
        Assert.Equal(2 * (7 + 1), run.ProgressReports.Count); // 100 images in batches of 16: 7 steps, then the epoch's report
        Assert.All(run.ProgressReports, p => Assert.True(double.IsFinite(p.Loss) && p.LearningRate >= 0));
        // 14 steps, 10 % warm-up: one step at the peak, then a cosine that only falls, still above zero at the last step.
        var rates = run.ProgressReports.Select(p => p.LearningRate).ToArray();
        Assert.Equal(3e-4, rates[0], 12);
        Assert.All(rates.Zip(rates.Skip(1)), pair => Assert.True(pair.Second <= pair.First, $"The rate rose from {pair.First} to {pair.Second} after the warm-up."));
        Assert.True(rates[^2] > 0 && rates[^2] < 3e-5);
    }

    [Fact]
    public void SaveThenLoadGivesIdenticalPredictions()
    {
        var test = TwoClassData.Keyed(run.Ml, run.Data.Test);
        string path = Path.Combine(run.Data.Folder, "model.zip");
        run.Ml.Model.Save(run.Model, test.Schema, path);
        Assert.True(new FileInfo(path).Length > 40_000_000, "The model zip should hold the fine-tuned weights (about 45 MB).");

        var fresh = new MLContext(5);
        ResNet18FineTuning.Register(fresh);
        var loaded = fresh.Model.Load(path, out _);
        var before = run.Model.Transform(test);
        var after = loaded.Transform(TwoClassData.Keyed(fresh, run.Data.Test));
        Assert.Equal(before.GetColumn<float[]>("Score").SelectMany(s => s), after.GetColumn<float[]>("Score").SelectMany(s => s));
        Assert.Equal(before.GetColumn<uint>("PredictedLabel"), after.GetColumn<uint>("PredictedLabel"));

        VBuffer<ReadOnlyMemory<char>> names = default;
        after.Schema["PredictedLabel"].GetKeyValues(ref names);
        Assert.Equal(["Trouser", "Bag"], names.DenseValues().Select(n => n.ToString()));
    }
}
