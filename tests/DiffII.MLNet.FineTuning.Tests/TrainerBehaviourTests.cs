using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.FineTuning.Tests;

/// <summary>Determinism, schema errors, checkpoints and resume: each on a handful of images at 64 px.</summary>
[Collection(TorchSeedCollection.Name)]
public sealed class TrainerBehaviourTests : IDisposable
{
    readonly TwoClassData _data = new();
    readonly MLContext _ml = new(0);

    public void Dispose() => _data.Dispose();

    sealed class BytesRow
    {
        [VectorType] public byte[] Image { get; set; } = [];
        public string Label { get; set; } = "";
    }

    IDataView FewAsBytes(int perClass)
    {
        var rows = _data.Train.GroupBy(r => r.Label).SelectMany(g => g.Take(perClass))
            .Select(r => new BytesRow { Image = File.ReadAllBytes(r.Image), Label = r.Label });
        var data = _ml.Data.LoadFromEnumerable(rows);
        return _ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
    }

    static ResNet18FineTuneOptions Small(int seed = 7) => new() { ImageSize = 64, BatchSize = 4, Epochs = 1, Seed = seed };

    static float[] Scores(ITransformer model, IDataView data) => model.Transform(data).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();

    [Fact]
    public void TheSameSeedGivesIdenticalWeightsOnCpu()
    {
        var data = FewAsBytes(4);
        long outsideScopes = TorchSharp.DisposeScopeManager.Statistics.CreatedOutsideScopeCount;
        var firstModel = _ml.MulticlassClassification.Trainers.ResNet18FineTune(Small()).Fit(data);
        // Fit makes every tensor inside a scope (HeldTensors), so none can be finalized while libtorch uses it.
        Assert.Equal(outsideScopes, TorchSharp.DisposeScopeManager.Statistics.CreatedOutsideScopeCount);
        var first = Scores(firstModel, data);
        var second = Scores(_ml.MulticlassClassification.Trainers.ResNet18FineTune(Small()).Fit(data), data);
        var otherSeed = Scores(_ml.MulticlassClassification.Trainers.ResNet18FineTune(Small(seed: 8)).Fit(data), data);
        Assert.Equal(first, second);
        Assert.NotEqual(first, otherSeed);
    }

    [Fact]
    public void ResumingFromACheckpointGivesTheUninterruptedResult()
    {
        var data = FewAsBytes(3);
        string folder = Path.Combine(_data.Folder, "ckpt");
        var whole = Scores(_ml.MulticlassClassification.Trainers.ResNet18FineTune(WithEpochs(Small(), 2)).Fit(data), data);

        // Cancel the second epoch at its first step: the first epoch's checkpoint stays.
        var cancel = new CancellationTokenSource();
        var interrupted = WithEpochs(Small(), 2);
        interrupted.CheckpointDirectory = folder;
        interrupted.Progress = new SynchronousProgress<FineTuneProgress>(p => { if (p.Epoch == 2) cancel.Cancel(); });
        interrupted.CancellationToken = cancel.Token;
        Assert.ThrowsAny<OperationCanceledException>(() => _ml.MulticlassClassification.Trainers.ResNet18FineTune(interrupted).Fit(data));

        var resumed = WithEpochs(Small(), 2);
        resumed.CheckpointDirectory = folder;
        var trainer = _ml.MulticlassClassification.Trainers.ResNet18FineTune(resumed);
        var scores = Scores(trainer.Fit(data), data);
        Assert.Equal(1, trainer.LastReport!.EpochsRun); // only the second epoch ran
        Assert.Equal(whole, scores);
    }

    [Fact]
    public void EarlyStoppingValidatesEveryEpochAndKeepsTheBestEpoch()
    {
        var data = FewAsBytes(8);
        var reports = new List<FineTuneProgress>();
        var options = WithEpochs(Small(), 3);
        options.ValidationFraction = 0.25;
        options.EarlyStoppingPatience = 1;
        options.Progress = new SynchronousProgress<FineTuneProgress>(reports.Add);
        var trainer = _ml.MulticlassClassification.Trainers.ResNet18FineTune(options);
        trainer.Fit(data);
        var report = trainer.LastReport!;
        var accuracies = reports.Where(r => r.ValidationAccuracy is not null).Select(r => r.ValidationAccuracy!.Value).ToList();
        Assert.Equal(report.EpochsRun, accuracies.Count);
        Assert.All(report.EpochSourceRows, epoch => Assert.Equal(12, epoch.Count)); // 4 of 16 originals held out
        Assert.NotNull(report.BestEpoch);
        Assert.Equal(accuracies.Max(), accuracies[report.BestEpoch!.Value - 1]);
        // Patience 1: the run stops at the first epoch that does not improve on the best.
        for (int e = 1; e < accuracies.Count - 1; e++) Assert.True(accuracies[e] > accuracies.Take(e).Max());
    }

    [Fact]
    public void BFloat16IsRefusedOnTheCpu()
    {
        var options = Small();
        options.DType = FineTuneDType.BFloat16;
        var error = Assert.Throws<ArgumentException>(() => _ml.MulticlassClassification.Trainers.ResNet18FineTune(options).Fit(FewAsBytes(1)));
        Assert.Contains("CUDA", error.Message);
    }

    static ResNet18FineTuneOptions WithEpochs(ResNet18FineTuneOptions o, int epochs) { o.Epochs = epochs; return o; }

    [Fact]
    public void AMissingOrMistypedImageColumnIsNamed()
    {
        var data = TwoClassData.Keyed(_ml, _data.Train.Take(2));
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _ml.MulticlassClassification.Trainers.ResNet18FineTune(new ResNet18FineTuneOptions { ImageColumnName = "Picture", ImageSize = 64 }).Fit(data));
        Assert.Contains("'Picture'", missing.Message);
        var mistyped = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _ml.MulticlassClassification.Trainers.ResNet18FineTune(new ResNet18FineTuneOptions { ImageColumnName = "Label", ImageSize = 64 }).Fit(data));
        Assert.Contains("image column 'Label'", mistyped.Message);
    }

    [Fact]
    public void ALabelThatIsNotAKeyIsNamed()
    {
        var data = _ml.Data.LoadFromEnumerable(_data.Train.Take(2)); // Label is text, not a key
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _ml.MulticlassClassification.Trainers.ResNet18FineTune(new ResNet18FineTuneOptions { ImageSize = 64 }).Fit(data));
        Assert.Contains("label column 'Label'", error.Message);
        Assert.Contains("key", error.Message);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _ml.MulticlassClassification.Trainers.ResNet18FineTune(new ResNet18FineTuneOptions { ImageSize = 64, LabelColumnName = "Class" }).Fit(data));
        Assert.Contains("label column 'Class'", missing.Message);
    }
}
