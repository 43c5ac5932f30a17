using DiffII.TinyWorld.Judging;
using DiffII.TinyWorld.Pretraining;
using DiffII.TinyWorld.Tests.Pretraining;
using static TorchSharp.torch;

namespace DiffII.TinyWorld.Tests.Judging;

[Collection(GlobalTorchRngCollection.Name)]
public sealed class TinyJudgeTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-judge-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    JudgeOptions Options(string work, string data, int steps) => new()
    {
        WorkFolder = Path.Combine(_root, work), FashionMnistFolder = data, Steps = steps, BatchSize = 32, Width = 8,
        WarmupSteps = 5, CheckpointEvery = 10, LearningRate = 5e-3,
    };

    [Fact]
    public void Judge_LearnsSeparableClasses_SavesAndLoads_AndResumesExactly()
    {
        string data = SmallWorld.WriteFolder(Path.Combine(_root, "fmnist"), perClass: 30, classes: [0, 9]);
        using var straight = TinyJudge.Train(Options("a", data, 60));
        // A tall bar against a flat one, in random scenes: an untrained network picks among ten classes.
        Assert.True(straight.Card.AccuracyInDistribution > 0.9, $"in-distribution accuracy {straight.Card.AccuracyInDistribution:P1}");
        Assert.True(straight.Card.AccuracyShifted > 0.8, $"shifted accuracy {straight.Card.AccuracyShifted:P1}");

        string saved = Path.Combine(_root, "saved");
        straight.Save(saved);
        using var loaded = TinyJudge.Load(saved);
        var test = FashionMnist.Load(FashionMnistSplit.Test, data);
        var pictures = TinyWorldData.ToTensor(TinyJudge.ShiftedTest(test));
        Assert.Equal(straight.Predict(pictures), loaded.Predict(pictures));
        Assert.Equal(straight.Card.Classes, loaded.Card.Classes);
        Assert.Equal(straight.Card with { Classes = [] }, loaded.Card with { Classes = [] });

        using var cts = new CancellationTokenSource();
        var stop = new SyncProgress(p => { if (p.Step == 25) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => TinyJudge.Train(Options("b", data, 60), stop, cts.Token));
        using var resumed = TinyJudge.Train(Options("b", data, 60));
        Assert.Equal(straight.Predict(pictures), resumed.Predict(pictures));
        Assert.Equal(straight.Card.AccuracyShifted, resumed.Card.AccuracyShifted);
    }

    [Fact]
    public void JudgeLoad_WithoutACard_NamesTheMissingFile()
    {
        var error = Assert.Throws<FileNotFoundException>(() => TinyJudge.Load(_root));
        Assert.Contains(TinyJudge.CardFile, error.Message);
    }

    sealed class SyncProgress(Action<PretrainProgress> report) : IProgress<PretrainProgress>
    {
        public void Report(PretrainProgress value) => report(value);
    }
}
