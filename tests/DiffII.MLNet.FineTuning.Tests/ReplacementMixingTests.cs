using DiffII.MLNet.Data;
using Microsoft.ML;

namespace DiffII.MLNet.FineTuning.Tests;

/// <summary>The trainer draws the paper's replacement schedule afresh every epoch, as ReplacementMixingDataView does.</summary>
[Collection(TorchSeedCollection.Name)]
public sealed class ReplacementMixingTests : IDisposable
{
    readonly TwoClassData _data = new();
    readonly MLContext _ml = new(0);

    public void Dispose() => _data.Dispose();

    sealed class AugmentedRow
    {
        public string Image { get; set; } = "";
        public string Label { get; set; } = "";
        public bool IsSynthetic { get; set; }
        public uint SyntheticGroup { get; set; }
        public float SampleWeight { get; set; } = 1;
    }

    /// <summary>Six originals, then three synthetic images: one per class, and one soft-labelled (Trouser 0.7, Bag 0.3) in two rows.</summary>
    IDataView Augmented()
    {
        var trousers = _data.Train.Where(r => r.Label == "Trouser").ToList();
        var bags = _data.Train.Where(r => r.Label == "Bag").ToList();
        var rows = new List<AugmentedRow>();
        foreach (var r in trousers.Take(3).Concat(bags.Take(3))) rows.Add(new AugmentedRow { Image = r.Image, Label = r.Label });
        rows.Add(new AugmentedRow { Image = trousers[10].Image, Label = "Trouser", IsSynthetic = true, SyntheticGroup = 1 });
        rows.Add(new AugmentedRow { Image = bags[10].Image, Label = "Bag", IsSynthetic = true, SyntheticGroup = 2 });
        rows.Add(new AugmentedRow { Image = bags[11].Image, Label = "Bag", IsSynthetic = true, SyntheticGroup = 3, SampleWeight = 0.3f });
        rows.Add(new AugmentedRow { Image = bags[11].Image, Label = "Trouser", IsSynthetic = true, SyntheticGroup = 3, SampleWeight = 0.7f });
        var data = _ml.Data.LoadFromEnumerable(rows);
        return _ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
    }

    [Fact]
    public void EveryEpochDrawsAfreshExactlyAsReplacementMixingDataView()
    {
        var data = Augmented();
        var trainer = _ml.MulticlassClassification.Trainers.ResNet18FineTune(new ResNet18FineTuneOptions
        {
            ImageSize = 64, BatchSize = 6, Epochs = 4, Seed = 11, ReplacementProbability = 0.5,
        });
        trainer.Fit(data);
        var report = trainer.LastReport!;
        Assert.Equal(9, report.Examples); // six originals and three synthetic images (the soft one is one example)
        Assert.Equal(6, report.Originals);

        var reference = new ReplacementMixingDataView(data, "Label", probability: 0.5, seed: 11);
        var epochs = report.EpochSourceRows.Select(images => images.SelectMany(rows => rows).Order().ToArray()).ToList();
        for (int epoch = 0; epoch < 4; epoch++)
        {
            Assert.Equal(reference.PlanForPass(epoch), epochs[epoch]);
            Assert.Equal(6, report.EpochSourceRows[epoch].Count); // one image per original, every epoch
        }
        Assert.True(epochs.Distinct(new RowsComparer()).Count() > 1, "Every epoch trained on the same rows; the draw is not per epoch.");
        Assert.Contains(epochs, rows => rows.Any(r => r >= 6)); // some epoch trained on a synthetic image
        // The soft-labelled image is drawn whole: its two rows come together or not at all.
        Assert.All(report.EpochSourceRows, images => Assert.DoesNotContain(images, rows => rows.Contains(8) != rows.Contains(9)));
    }

    [Fact]
    public void ASoftLabelledImageIsOneExampleWithItsWeightsAsTarget()
    {
        var data = Augmented();
        var options = new ResNet18FineTuneOptions { ImageSize = 64 };
        var (chain, _) = ImageColumns.ToPixels(_ml, data.Schema, "Image", null, 64);
        var set = TrainingSet.Read(chain.Fit(data).Transform(data), options, numClasses: 2, CancellationToken.None);
        int soft = Enumerable.Range(0, set.Pixels.Count).Single(i => set.SourceRows[i].Length == 2);
        Assert.Equal([8L, 9L], set.SourceRows[soft]);
        // Keys by occurrence: Trouser = 1, Bag = 2.
        Assert.Equal([0.7f, 0.3f], set.Targets[soft]);
        Assert.Contains(soft, set.SyntheticByClass[0]); // it stands in for trousers, its largest weight
        Assert.Equal([1f, 0f], set.Targets[set.Originals[0]]);
    }

    [Fact]
    public void WithoutSyntheticRowsEveryEpochIsTheOriginals()
    {
        var data = TwoClassData.Keyed(_ml, _data.Train.Take(4));
        var (chain, _) = ImageColumns.ToPixels(_ml, data.Schema, "Image", null, 64);
        var set = TrainingSet.Read(chain.Fit(data).Transform(data), new ResNet18FineTuneOptions { ImageSize = 64 }, 2, CancellationToken.None);
        for (int epoch = 0; epoch < 3; epoch++) Assert.Equal(set.Originals, set.PlanForEpoch(epoch, 0.5, 3));
    }

    sealed class RowsComparer : IEqualityComparer<long[]>
    {
        public bool Equals(long[]? x, long[]? y) => x!.SequenceEqual(y!);
        public int GetHashCode(long[] obj) => obj.Aggregate(17, (h, v) => h * 31 + v.GetHashCode());
    }
}
