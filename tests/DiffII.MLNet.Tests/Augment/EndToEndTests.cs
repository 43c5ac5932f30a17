using DiffII.Experiments.Classification;
using DiffII.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Tests.Augment;

[Collection(TinyAugmentCollection.Name)]
public sealed class EndToEndTests(TinyAugment tiny)
{
    [Fact]
    public void ImageFolder_Augment_ResNet18_Lbfgs_Metrics_OnCpu()
    {
        var ml = new MLContext(seed: 1);
        var train = ImageFolderDataset.Load(ml, tiny.TrainFolder);
        var test = ImageFolderDataset.Load(ml, tiny.TestFolder);
        string cache = Path.Combine(tiny.Root, "cache-end-to-end");
        var options = TinyAugment.Options(cache);

        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.DiffIIAugment(options), TransformerScope.Training)
            .Append(ImageFeaturizer.Create(ml, train.Schema, new ImageFeaturizerOptions { ImageColumn = "ImagePath", CacheFeatures = false }))
            .AppendCacheCheckpoint(ml)
            .Append(ClassifierTrainer.LbfgsMaximumEntropy().Create(ml, new TrainerColumns("Label", "Features", "SampleWeight")))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));

        Assert.True(File.Exists(Path.Combine(cache, DiffIIAugmentEstimator.StateFileName)));
        Assert.Equal(10, Directory.GetFiles(Path.Combine(cache, "synthetic"), "*.png", SearchOption.AllDirectories).Length);
        Assert.Equal(6, metrics.ConfusionMatrix.Counts.Sum(row => row.Sum())); // the test rows only: nothing synthetic was scored
        Assert.InRange(metrics.MicroAccuracy, 0, 1);
        Assert.False(double.IsNaN(metrics.LogLoss));
        // The classes are solid colours; ResNet18 features separate them even with noise-like synthetic rows added.
        Assert.True(metrics.MicroAccuracy >= 2.0 / 3, $"accuracy {metrics.MicroAccuracy:F3}");
    }

    [Fact]
    public void ReplacementMixing_Extension_GivesOneRowPerOriginal_ReplacedBySyntheticRowsOfItsClass()
    {
        var ml = new MLContext(seed: 1);
        var augmented = ml.Data.Cache(tiny.PathFit.Transform(tiny.Train));
        var mixing = ml.Data.ReplacementMixing(augmented, "Label", probability: 1.0, seed: 4);
        Assert.Equal(5, mixing.GetRowCount());
        var pass = mixing.GetColumn<bool>("IsSynthetic").ToArray();
        Assert.Equal(5, pass.Length);
        Assert.All(pass, Assert.True); // p = 1: every original replaced by a synthetic row of its class
        var labels = mixing.GetColumn<string>("Label").OrderBy(l => l, StringComparer.Ordinal).ToArray();
        Assert.Equal(["blue", "blue", "green", "green", "red"], labels);
        Assert.Equal(2, mixing.PassesStarted); // one per GetColumn above; counting rows opens none
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.Data.ReplacementMixing(augmented, "Label", probability: 1.5));
    }
}
