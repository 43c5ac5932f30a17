using DiffII.Experiments.Classification;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace DiffII.MLNet.Tests.Classification;

[Collection(ToyShapesCollection.Name)]
public sealed class ClassifierComparisonTests(ToyShapes toy, ITestOutputHelper output)
{
    static ClassifierComparisonOptions Options(params AugmentationMixing[] mixings) => new()
    {
        // LightGBM's leaves need room in 18 originals: at most 2 examples per leaf.
        Trainers = [ClassifierTrainer.LbfgsMaximumEntropy(), ClassifierTrainer.SdcaMaximumEntropy(), ClassifierTrainer.LightGbm(minimumExamplesPerLeaf: 2)],
        Mixings = mixings,
    };

    [Fact]
    public void EndToEnd_OneRowPerTrainerModeAndTestSet_SeparableClassesLearnt()
    {
        var result = ClassifierComparison.Run(toy.Ml, toy.AugmentedFeatures, toy.TestSets,
            Options(AugmentationMixing.Concat, AugmentationMixing.Replacement(0.5, stackedPasses: 3)));
        output.WriteLine(result.ToTable());

        string[] trainers = ["LbfgsMaximumEntropy", "SdcaMaximumEntropy", "LightGbm"];
        string[] modes = ["originals", "concat", "replacement(p=0.5)"];
        Assert.Equal(3 * 3 * 2, result.Rows.Count);
        Assert.Equal(
            (from t in trainers from m in modes from s in new[] { "in-distribution", "shifted" } select (t, m, s)).ToArray(),
            result.Rows.Select(r => (r.Trainer, r.Mode, r.TestSet)).ToArray());
        Assert.Equal(ToyShapes.Classes, result.Classes);

        int originals = 3 * ToyShapes.TrainPerClass;
        foreach (var row in result.Rows)
        {
            // Originals-only trains on the 18 originals; concat adds the 3 synthetic rows; replacement in expectation
            // (L-BFGS) has every row once, reweighted; the stacked trainers get 3 draws of one row per original.
            long expectedRows = row.Mode switch
            {
                "originals" => originals,
                "concat" => originals + 3,
                _ => row.Trainer == "LbfgsMaximumEntropy" ? originals + 3 : 3 * originals,
            };
            Assert.Equal(expectedRows, row.TrainingRows);
            Assert.True(row.TrainingPasses >= 1);
            Assert.Equal(ToyShapes.Classes.Length, row.PerClass.Count);
            Assert.All(row.PerClass, c => Assert.Equal(ToyShapes.TestPerClass, c.Support));
            // ML.NET's macro accuracy is the mean of the per-class accuracies.
            Assert.Equal(row.MacroAccuracy, row.PerClass.Average(c => c.Accuracy), 9);
            Assert.Equal(row.MicroAccuracy, row.PerClass.Sum(c => c.Correct) / row.PerClass.Sum(c => c.Support), 9);
        }

        // Distinct shapes in distinct colours: the linear models get the in-distribution test set right; trees on
        // 512 features from 18 images do well above chance (1/3).
        Assert.All(result.Rows.Where(r => r.TestSet == "in-distribution"),
            r => Assert.True(r.MicroAccuracy >= (r.Trainer == "LightGbm" ? 0.66 : 0.88), $"{r.Trainer}/{r.Mode}: {r.MicroAccuracy}"));

        // L-BFGS minimises the schedule's expected loss (no draws); SDCA and LightGBM get 3 stacked draws.
        Assert.All(result.Rows.Where(r => r.Trainer != "LbfgsMaximumEntropy" && r.Mode.StartsWith("replacement")), r => Assert.Equal(3, r.Mixes));
        Assert.All(result.Rows.Where(r => r.Trainer == "LbfgsMaximumEntropy" || !r.Mode.StartsWith("replacement")), r => Assert.Equal(0, r.Mixes));

        string table = result.ToTable();
        Assert.Contains("MicroAcc", table);
        Assert.Equal(result.Rows.Count + 2, table.TrimEnd('\n').Split('\n').Length);
        Assert.All(trainers, t => Assert.Contains(t, table));
    }

    [Fact]
    public void FineTuneTrainer_ReadsTheImages_AndDrawsTheReplacementItselfOncePerEpoch()
    {
        var options = new ClassifierComparisonOptions
        {
            Trainers = [ClassifierTrainer.ResNet18FineTune(seed: 1, imageSize: 64, epochs: 4, batchSize: 6)],
            Mixings = [AugmentationMixing.Concat, AugmentationMixing.Replacement(0.5)],
            ImageColumn = "ImagePath",
            ImageFolder = toy.Folder,
        };
        var result = ClassifierComparison.Run(toy.Ml, toy.AugmentedFeatures, toy.TestSets, options);
        output.WriteLine(result.ToTable());

        Assert.Equal(
            (from m in new[] { "originals", "concat", "replacement(p=0.5)" } from s in new[] { "in-distribution", "shifted" } select ("ResNet18FineTune", m, s)).ToArray(),
            result.Rows.Select(r => (r.Trainer, r.Mode, r.TestSet)).ToArray());
        int originals = 3 * ToyShapes.TrainPerClass;
        // The trainer is handed every row once and keeps the images in memory; with replacement it reads the
        // synthetic flag and draws anew each of its 4 epochs, while concat trains on all 21 rows as they are.
        Assert.Equal([originals, originals, originals + 3, originals + 3, originals + 3, originals + 3], result.Rows.Select(r => r.TrainingRows));
        Assert.Equal([0, 0, 0, 0, 4, 4], result.Rows.Select(r => r.Mixes));
        Assert.All(result.Rows, r => Assert.Equal(1, r.TrainingPasses));
        // Distinct shapes in distinct colours, learnt from the pixels.
        Assert.All(result.Rows.Where(r => r.TestSet == "in-distribution"), r => Assert.True(r.MicroAccuracy >= 0.66, $"{r.Mode}: {r.MicroAccuracy}"));

        // Without the image column the trainer cannot run, and says so before any training.
        var error = Assert.Throws<ArgumentException>(() => ClassifierComparison.Run(toy.Ml, toy.AugmentedFeatures, toy.TestSets, options with { ImageColumn = null }));
        Assert.Contains("reads images", error.Message);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ClassifierComparison.Run(toy.Ml, toy.AugmentedFeatures, toy.TestSets, options with { ImageColumn = "Picture" }));
        Assert.Contains("'Picture'", missing.Message);
    }

    [Fact]
    public void SyntheticGroup_SurvivesFeaturisingAndCaching()
    {
        // 18 originals (group 0), then the three synthetic images, one group each, in the featurised, cached view.
        Assert.Equal(Enumerable.Repeat(0u, 3 * ToyShapes.TrainPerClass).Concat([1u, 2u, 3u]), toy.AugmentedFeatures.GetColumn<uint>("SyntheticGroup"));
        Assert.NotNull(toy.AugmentedFeatures.Schema.GetColumnOrNull("Features"));
    }

    /// <summary>Synthetic rows whose content is another class's: every original of class c + 1, <paramref name="copies"/> times, labelled c.</summary>
    IEnumerable<ToyShapes.FeatureRow> WrongSynthetic(int copies, float weight)
    {
        foreach (var donor in toy.TrainRows.Where(r => !r.IsSynthetic))
        {
            string previous = ToyShapes.Classes[(Array.IndexOf(ToyShapes.Classes, donor.Label) + ToyShapes.Classes.Length - 1) % ToyShapes.Classes.Length];
            for (int i = 0; i < copies; i++)
                yield return new ToyShapes.FeatureRow { Label = previous, IsSynthetic = true, SampleWeight = weight, Features = donor.Features };
        }
    }

    [Fact]
    public void WrongSyntheticRows_AreReallyUsed_ByConcatWithTheirWeights_AndByReplacement()
    {
        var originals = toy.TrainRows.Where(r => !r.IsSynthetic).ToList();
        var options = Options(AugmentationMixing.Concat, AugmentationMixing.Replacement(1.0, stackedPasses: 2)) with
        {
            Trainers = [ClassifierTrainer.LbfgsMaximumEntropy(), ClassifierTrainer.SdcaMaximumEntropy()],
        };
        var wrong = ClassifierComparison.Run(toy.Ml, toy.TrainingView(originals.Concat(WrongSynthetic(copies: 3, weight: 1f))), toy.InDistribution, options);
        output.WriteLine(wrong.ToTable());
        foreach (var trainer in new[] { "LbfgsMaximumEntropy", "SdcaMaximumEntropy" })
        {
            var byMode = wrong.Rows.Where(r => r.Trainer == trainer).ToDictionary(r => r.Mode);
            Assert.True(byMode["originals"].MicroAccuracy >= 0.88);
            // Three wrong rows per original outweigh it: most predictions follow the wrong labels.
            Assert.True(byMode["concat"].MicroAccuracy <= 0.34, $"{trainer} concat: {byMode["concat"].MicroAccuracy}");
            Assert.True(byMode["concat"].LogLoss > byMode["originals"].LogLoss + 0.5);
            // p = 1 replaces every original by a wrong row: the labels are a permutation, so accuracy collapses.
            Assert.True(byMode["replacement(p=1)"].MicroAccuracy <= 0.12, $"{trainer} replacement: {byMode["replacement(p=1)"].MicroAccuracy}");
        }

        // The same wrong rows at weight 0 change nothing: concat really trains with SampleWeight.
        var weightless = ClassifierComparison.Run(toy.Ml, toy.TrainingView(originals.Concat(WrongSynthetic(copies: 3, weight: 0f))), toy.InDistribution,
            options with { Trainers = [ClassifierTrainer.LbfgsMaximumEntropy()], Mixings = [AugmentationMixing.Concat] });
        var plain = weightless.Rows.Single(r => r.Mode == "originals");
        var zeroWeighted = weightless.Rows.Single(r => r.Mode == "concat");
        Assert.Equal(plain.MicroAccuracy, zeroWeighted.MicroAccuracy);
        Assert.Equal(plain.LogLoss, zeroWeighted.LogLoss, 3);
    }

    [Fact]
    public void SavedBestModel_LoadsAndPredictsOneImagePath_WithPredictionEngine()
    {
        var result = ClassifierComparison.Run(toy.Ml, toy.AugmentedFeatures, toy.TestSets,
            Options(AugmentationMixing.Concat) with { Trainers = [ClassifierTrainer.LbfgsMaximumEntropy(), ClassifierTrainer.LightGbm(minimumExamplesPerLeaf: 2)] });
        var best = result.BestModel("in-distribution");
        double bestAccuracy = result.Rows.Where(r => r.TestSet == "in-distribution").Max(r => r.MicroAccuracy);
        Assert.Equal(bestAccuracy, result.Rows.Single(r => r.Trainer == best.Trainer && r.Mode == best.Mode && r.TestSet == "in-distribution").MicroAccuracy);
        Assert.Contains("'nope'", Assert.Throws<ArgumentException>(() => result.BestModel("nope")).Message);

        string path = Path.Combine(toy.Folder, "saved", "best.zip");
        best.Save(toy.Ml, toy.Featurizer, toy.AugmentedImages.Schema, path);

        var ml = new MLContext(seed: 5);
        var loaded = ClassifierModel.Load(ml, path, out var inputSchema);
        Assert.NotNull(inputSchema.GetColumnOrNull("ImagePath"));
        using var engine = ml.Model.CreatePredictionEngine<ToyShapes.ImageRow, ClassifierPrediction>(loaded);
        var random = new Random(99);
        foreach (var label in ToyShapes.Classes)
        {
            // A new image, given by absolute path (the saved folder is only for relative ones), with no label.
            string image = toy.Draw(label, $"fresh-{label}.png", random, shiftedBackground: false, relativePath: false);
            var prediction = engine.Predict(new ToyShapes.ImageRow { ImagePath = image });
            Assert.Equal(label, prediction.PredictedLabel);
            Assert.Equal(3, prediction.Score.Length);
            Assert.Equal(1.0, prediction.Score.Sum(), 4);
            Assert.Equal(prediction.Score.Max(), prediction.Score[best.Classes.ToList().IndexOf(label)]);
        }
    }

    [Fact]
    public void Errors_NameTheColumnAndTheDataSet()
    {
        var originals = toy.TrainRows.Where(r => !r.IsSynthetic).ToList();
        var train = toy.TrainingView(originals);
        var options = Options(AugmentationMixing.Concat) with { Trainers = [ClassifierTrainer.LbfgsMaximumEntropy()] };

        var missingLabel = Assert.Throws<ArgumentOutOfRangeException>(() => ClassifierComparison.Run(toy.Ml, train, toy.InDistribution, options with { LabelColumn = "Class" }));
        Assert.Contains("label", missingLabel.Message);
        Assert.Contains("'Class'", missingLabel.Message);
        Assert.Contains("training data", missingLabel.Message);

        var missingFeatures = Assert.Throws<ArgumentOutOfRangeException>(() => ClassifierComparison.Run(toy.Ml, train,
            new Dictionary<string, IDataView> { ["shifted"] = toy.Ml.Transforms.DropColumns("Features").Fit(toy.Shifted).Transform(toy.Shifted) }, options));
        Assert.Contains("'Features'", missingFeatures.Message);
        Assert.Contains("test set 'shifted'", missingFeatures.Message);

        var noFlag = toy.Ml.Transforms.DropColumns("IsSynthetic").Fit(train).Transform(train);
        Assert.Contains("'IsSynthetic'", Assert.Throws<ArgumentOutOfRangeException>(() => ClassifierComparison.Run(toy.Ml, noFlag, toy.InDistribution, options)).Message);

        var wrongFeatures = Assert.Throws<ArgumentOutOfRangeException>(() => ClassifierComparison.Run(toy.Ml, train, toy.InDistribution, options with { FeaturesColumn = "Label" }));
        Assert.Contains("features column 'Label'", wrongFeatures.Message);

        var twoClasses = toy.TrainingView(originals.Where(r => r.Label != "red-disc"));
        var unknown = Assert.Throws<ArgumentException>(() => ClassifierComparison.Run(toy.Ml, twoClasses, toy.TestSets, options));
        Assert.Contains("red-disc", unknown.Message);
        Assert.Contains("'in-distribution'", unknown.Message);
    }
}
