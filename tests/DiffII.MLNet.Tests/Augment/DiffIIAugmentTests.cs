using DiffII.Augmentation;
using DiffII.Experiments.Classification;
using DiffII.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace DiffII.MLNet.Tests.Augment;

[Collection(TinyAugmentCollection.Name)]
public sealed class DiffIIAugmentTests(TinyAugment tiny)
{
    MLContext Ml => tiny.Ml;

    sealed class FloatLabelRow
    {
        public float Label { get; set; }
        public string ImagePath { get; set; } = "";
    }

    sealed class VectorImageRow
    {
        public string Label { get; set; } = "";
        [VectorType(3)] public float[] Image { get; set; } = [0, 0, 0];
    }

    static Exception FitError(IEstimator<ITransformer> estimator, IDataView data) =>
        Record.Exception(() => new EstimatorChain<ITransformer>().Append(estimator, TransformerScope.Training).Fit(data))
        ?? throw new Xunit.Sdk.XunitException("Fit succeeded on a bad schema.");

    [Fact]
    public void SchemaErrors_NameTheColumn()
    {
        var estimator = new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "never-used")) with { LabelColumnName = "Species" });
        var missing = FitError(estimator, tiny.Train);
        Assert.IsType<ArgumentOutOfRangeException>(missing);
        Assert.Contains("label column 'Species' is not in the input", missing.Message);
        Assert.Contains("Label (String)", missing.Message); // lists what is there

        var floats = Ml.Data.LoadFromEnumerable(new[] { new FloatLabelRow { Label = 1, ImagePath = "a.png" } });
        var floatLabel = FitError(new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "never-used"))), floats);
        Assert.Contains("label column 'Label' has type Single", floatLabel.Message);
        Assert.Contains("map it to a key first", floatLabel.Message);

        var vectors = Ml.Data.LoadFromEnumerable(new[] { new VectorImageRow { Label = "a" } });
        var wrongImage = FitError(new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "never-used"), imageColumn: "Image")), vectors);
        Assert.Contains("image column 'Image' has type Vector<Single>", wrongImage.Message);

        // A fixed-size image column cannot take the generator-sized synthetic images.
        var resized = Ml.Transforms.LoadImages("Image", null, "ImagePath").Append(Ml.Transforms.ResizeImages("Image", 8, 8)).Fit(tiny.Train).Transform(tiny.Train);
        var sized = FitError(new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "never-used"), imageColumn: "Image")), resized);
        Assert.Contains("image column 'Image' holds images of a fixed size (8×8", sized.Message);

        // The fitted transformer checks the same way when it is applied to other data.
        var transformError = Assert.Throws<ArgumentOutOfRangeException>(() => tiny.PathFit.GetOutputSchema(floats.Schema));
        Assert.Contains("label column 'Label' has type Single", transformError.Message);
        Assert.False(Directory.Exists(Path.Combine(tiny.Root, "never-used")));
    }

    [Fact]
    public void RowCounts_PerClass_AreExpansionTimesOriginals_AndTargetCountFillsTheLongTail()
    {
        var augmented = tiny.PathFit.Transform(tiny.Train);
        var labels = augmented.GetColumn<string>("Label").ToArray();
        var flags = augmented.GetColumn<bool>("IsSynthetic").ToArray();
        var weights = augmented.GetColumn<float>("SampleWeight").ToArray();
        Assert.Equal(5 + 10, augmented.GetRowCount());
        Assert.Equal(15, labels.Length);
        Assert.Equal([false, false, false, false, false], flags[..5]);
        Assert.All(flags[5..], Assert.True);
        Assert.All(weights, w => Assert.Equal(1f, w));
        int Synthetic(string c) => labels.Where((l, i) => flags[i] && l == c).Count();
        Assert.Equal([4, 4, 2], TinyAugment.Classes.Select(c => Synthetic(c.Name)).ToArray()); // 2 × (2, 2, 1)

        // Long tail: lift every class to 3 images. The same cache folder: concepts and inversions are reused, and
        // the budget only decides how many samples of each class's fixed sequence are taken.
        var longTail = new DiffIIAugmentEstimator(TinyAugment.Options(tiny.PathFit.CacheFolder) with { ExpansionRate = null, TargetCount = 3 }).Fit(tiny.Train);
        var tailLabels = longTail.Transform(tiny.Train).GetColumn<string>("Label").Skip(5).ToArray();
        Assert.Equal([1, 1, 2], TinyAugment.Classes.Select(c => tailLabels.Count(l => l == c.Name)).ToArray());
        // Sample k of a class is the same image whatever the budget.
        var first = tiny.PathFit.SyntheticRows.First(r => r.ClassName == "red");
        var again = longTail.SyntheticRows.First(r => r.ClassName == "red");
        Assert.Equal(File.ReadAllBytes(first.ImagePath), File.ReadAllBytes(again.ImagePath));
    }

    [Fact]
    public void PathColumn_StaysPath_FilesExist_AndTwoCursorsReturnIdenticalRows()
    {
        var augmented = tiny.PathFit.Transform(tiny.Train);
        Assert.Equal(TextDataViewType.Instance, augmented.Schema["ImagePath"].Type);
        var paths = augmented.GetColumn<string>("ImagePath").ToArray();
        Assert.All(paths, p => Assert.True(File.Exists(p), p));
        Assert.All(paths[5..], p => Assert.StartsWith(tiny.PathFit.CacheFolder, p));

        // Two passes: the same rows, the same image bytes (nothing is regenerated).
        string Pass() => string.Join("\n", augmented.GetColumn<string>("Label").Zip(augmented.GetColumn<string>("ImagePath"))
            .Select(r => $"{r.First} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(r.Second)))}"));
        Assert.Equal(Pass(), Pass());
    }

    [Fact]
    public void BytesAndMLImageColumns_RoundTrip_InTheirOwnKind()
    {
        // Real-Guidance needs neither concepts nor inversions: the cheapest fit that still reads every image.
        var bytes = Ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath").Fit(tiny.Train).Transform(tiny.Train);
        var bytesFit = new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "cache-bytes"), Strategy.RealGuidance, "Image")).Fit(bytes);
        var bytesOut = bytesFit.Transform(bytes);
        Assert.Equal(bytes.Schema["Image"].Type, bytesOut.Schema["Image"].Type);
        var encoded = bytesOut.GetColumn<VBuffer<byte>>("Image").Select(v => v.DenseValues().ToArray()).ToArray();
        Assert.Equal(15, encoded.Length);
        for (int i = 0; i < 10; i++) Assert.Equal(File.ReadAllBytes(bytesFit.SyntheticRows[i].ImagePath), encoded[5 + i]);
        Assert.Equal(File.ReadAllBytes(tiny.Train.GetColumn<string>("ImagePath").First()), encoded[0]);
        // A second cursor gives the same bytes.
        Assert.Equal(encoded, bytesOut.GetColumn<VBuffer<byte>>("Image").Select(v => v.DenseValues().ToArray()).ToArray());

        var images = Ml.Transforms.LoadImages("Image", null, "ImagePath").Fit(tiny.Train).Transform(tiny.Train);
        var imageFit = new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "cache-mlimage"), Strategy.RealGuidance, "Image")).Fit(images);
        var imageOut = imageFit.Transform(images);
        Assert.IsType<ImageDataViewType>(imageOut.Schema["Image"].Type);
        // Read each image while the cursor is on its row (ML.NET disposes it when the cursor moves on).
        var widths = imageOut.GetColumn<MLImage>("Image").Select(i => i.Width).ToArray();
        Assert.Equal([24, 24, 24, 24, 24, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16], widths); // synthetic: the generator's size
        string Pixels() => string.Join("|", imageOut.GetColumn<MLImage>("Image").Select(i => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(i.Pixels))));
        Assert.Equal(Pixels(), Pixels());

        // The MLImage fit saw exactly the loaded pixels: Real-Guidance edits its source image lightly (strength 0.1),
        // so with the same seed the two fits (PNG re-encoded from pixels vs the original files) give the same images.
        for (int i = 0; i < 10; i++)
            Assert.Equal(File.ReadAllBytes(bytesFit.SyntheticRows[i].ImagePath), File.ReadAllBytes(imageFit.SyntheticRows[i].ImagePath));
    }

    /// <summary>Counts the rows and synthetic rows the wrapped trainer is fitted on.</summary>
    sealed class RowCountingEstimator(IEstimator<ITransformer> trainer) : IEstimator<ITransformer>
    {
        public long Rows { get; private set; }
        public long SyntheticRows { get; private set; }

        public ITransformer Fit(IDataView input)
        {
            Rows = input.GetColumn<bool>("IsSynthetic").LongCount();
            SyntheticRows = input.GetColumn<bool>("IsSynthetic").LongCount(f => f);
            return trainer.Fit(input);
        }

        public SchemaShape GetOutputSchema(SchemaShape inputSchema) => trainer.GetOutputSchema(inputSchema);
    }

    sealed class ImageInput
    {
        public string Label { get; set; } = "";
        public string ImagePath { get; set; } = "";
    }

    [Fact]
    public void TrainingScope_TrainerSeesSyntheticRows_ScoringModelLeavesAugmenterOut_SavesLoadsAndPredicts()
    {
        var ml = new MLContext(seed: 1);
        var counting = new RowCountingEstimator(ClassifierTrainer.LbfgsMaximumEntropy(maximumIterations: 50).Create(ml, new TrainerColumns("Label", "Features", "SampleWeight")));
        var augment = ml.Transforms.DiffIIAugment(TinyAugment.Options(tiny.PathFit.CacheFolder)); // fitted already: a cache hit
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(augment, TransformerScope.Training)
            .Append(ImageFeaturizer.Create(ml, tiny.Train.Schema, new ImageFeaturizerOptions { ImageColumn = "ImagePath", CacheFeatures = false }))
            .AppendCacheCheckpoint(ml)
            .Append(counting)
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(tiny.Train);

        Assert.Equal(15, counting.Rows);
        Assert.Equal(10, counting.SyntheticRows);
        // The chain's own Transform uses the scoring scope: no synthetic rows are added to data being scored.
        Assert.Equal(5, model.Transform(tiny.Train).GetColumn<string>("PredictedLabel").Count());
        var scoring = model.GetModelFor(TransformerScope.Scoring);
        Assert.DoesNotContain(scoring, t => t is DiffIIAugmentTransformer);
        Assert.Contains(model, t => t is DiffIIAugmentTransformer);

        string path = Path.Combine(tiny.Root, "scoring.zip");
        ml.Model.Save(scoring, tiny.Train.Schema, path);
        var fresh = new MLContext(seed: 2);
        var loaded = ClassifierModel.Load(fresh, path, out var inputSchema);
        Assert.NotNull(inputSchema.GetColumnOrNull("ImagePath"));
        var engine = fresh.Model.CreatePredictionEngine<ImageInput, ClassifierPrediction>(loaded);
        var image = Directory.GetFiles(Path.Combine(tiny.TestFolder, "green")).First();
        var prediction = engine.Predict(new ImageInput { ImagePath = image });
        Assert.Contains(prediction.PredictedLabel, TinyAugment.Classes.Select(c => c.Name));
        Assert.Equal(3, prediction.Score.Length);
        Assert.Equal(1f, prediction.Score.Sum(), 3);

        // Saving the whole chain reaches the augmenter (ML.NET saves every transformer, whatever its scope).
        var error = Assert.Throws<NotSupportedException>(() => ml.Model.Save(model, tiny.Train.Schema, Path.Combine(tiny.Root, "full.zip")));
        Assert.Contains("TransformerScope.Training", error.Message);
        Assert.Contains("GetModelFor(TransformerScope.Scoring)", error.Message);
        // TrainingOnly() is the same scope, as a chain to append to: its transforms add rows only when asked for the training scope.
        var alone = augment.TrainingOnly().Fit(tiny.Train);
        Assert.Equal(5, alone.Transform(tiny.Train).GetRowCount());
        Assert.Equal(15, alone.Transform(tiny.Train, TransformerScope.Training).GetRowCount());
        Assert.Empty(alone.GetModelFor(TransformerScope.Scoring));

        var mapper = Assert.Throws<NotSupportedException>(() => tiny.PathFit.GetRowToRowMapper(tiny.Train.Schema));
        Assert.Contains("TransformerScope.Training", mapper.Message);
        Assert.False(((ITransformer)model).IsRowToRowMapper);
    }

    [Fact]
    public void SaveState_AndLoadFrom_ReuseTheFittedRows_WithoutRefitting()
    {
        string copy = Path.Combine(tiny.Root, "state-copy");
        tiny.PathFit.SaveState(copy);
        var loaded = DiffIIAugmentTransformer.LoadFrom(copy);
        Assert.Equal(copy, loaded.CacheFolder);
        Assert.Equal(tiny.PathFit.SyntheticRows.Select(r => (r.ClassName, r.Weight)), loaded.SyntheticRows.Select(r => (r.ClassName, r.Weight)));
        for (int i = 0; i < loaded.SyntheticRows.Count; i++)
        {
            Assert.StartsWith(copy, loaded.SyntheticRows[i].ImagePath);
            Assert.Equal(File.ReadAllBytes(tiny.PathFit.SyntheticRows[i].ImagePath), File.ReadAllBytes(loaded.SyntheticRows[i].ImagePath));
        }
        Assert.Equal(15, loaded.Transform(tiny.Train).GetRowCount());
        // The cache folder's state file describes its latest fit (other tests refit this folder with other budgets).
        Assert.NotEmpty(DiffIIAugmentTransformer.LoadFrom(tiny.PathFit.CacheFolder).SyntheticRows);

        // A refit pointed at the copy finds all its work done there.
        var before = Directory.GetFiles(copy, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".owner") && !f.EndsWith(DiffIIAugmentEstimator.StateFileName) && !f.EndsWith("fit.json")) // rewritten by every fit
            .ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var stages = new List<AugmentationProgress>();
        var refit = new DiffIIAugmentEstimator(TinyAugment.Options(copy), progress: new Progress(stages.Add)).Fit(tiny.Train);
        Assert.DoesNotContain(stages, p => p.Stage == "learn");
        Assert.All(stages.Where(p => p.Stage == "generate"), p => Assert.Equal(p.Total, p.Done));
        Assert.All(before, f => Assert.Equal(f.Value, File.GetLastWriteTimeUtc(f.Key))); // concepts, inversions, images: untouched
        Assert.Equal(loaded.SyntheticRows.Select(r => r.ImagePath), refit.SyntheticRows.Select(r => r.ImagePath));

        var missing = Assert.Throws<FileNotFoundException>(() => DiffIIAugmentTransformer.LoadFrom(Path.Combine(tiny.Root, "nothing-here")));
        Assert.Contains(DiffIIAugmentEstimator.StateFileName, missing.Message);
    }

    sealed class Progress(Action<AugmentationProgress> report) : IProgress<AugmentationProgress>
    {
        public void Report(AugmentationProgress value) => report(value);
    }

    [Fact]
    public void DiffMixSoftLabels_BecomeTwoWeightedRowsSharingTheImage()
    {
        var fit = new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "cache-diffmix"), Strategy.DiffMix) with { ExpansionRate = 1 }).Fit(tiny.Train);
        Assert.Equal(10, fit.SyntheticRows.Count); // 5 images × 2 labels
        foreach (var pair in fit.SyntheticRows.GroupBy(r => r.ImagePath))
        {
            Assert.Equal(2, pair.Count());
            Assert.Equal(1f, pair.Sum(r => r.Weight), 5);
            Assert.NotEqual(pair.First().ClassName, pair.Last().ClassName);
        }
        var weights = fit.Transform(tiny.Train).GetColumn<float>("SampleWeight").Skip(5).ToArray();
        Assert.Equal(fit.SyntheticRows.Select(r => r.Weight), weights);
        Assert.Contains(weights, w => w is > 0 and < 1);
    }

    sealed class NoColumns;

    [Fact]
    public void SyntheticGroup_IsInTheOutputSchema_OneNumberPerImage_AndSurvivesSaveStateAndOldStateFiles()
    {
        var estimator = new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "cache-diffmix"), Strategy.DiffMix) with { ExpansionRate = 1 });
        // SchemaShape has no public constructor from a schema; a custom mapping's output is the public way to make one.
        var input = Ml.Transforms.CustomMapping<NoColumns, ImageInput>((_, _) => { }, contractName: null).GetOutputSchema(new SchemaShape([]));
        var shape = estimator.GetOutputSchema(input);
        var groupShape = shape.Single(c => c.Name == "SyntheticGroup");
        Assert.Equal(NumberDataViewType.UInt32, groupShape.ItemType);
        Assert.Equal(SchemaShape.Column.VectorKind.Scalar, groupShape.Kind);

        var fit = estimator.Fit(tiny.Train); // the Diff-Mix test's cache folder: a cache hit when it ran first
        Assert.Equal("SyntheticGroup", fit.SyntheticGroupColumnName);
        Assert.Equal(NumberDataViewType.UInt32, fit.GetOutputSchema(tiny.Train.Schema)["SyntheticGroup"].Type);
        var augmented = fit.Transform(tiny.Train);
        var groups = augmented.GetColumn<uint>("SyntheticGroup").ToArray();
        var paths = augmented.GetColumn<string>("ImagePath").ToArray();
        Assert.All(groups[..5], g => Assert.Equal(0u, g));
        // Five Diff-Mix images, two rows each: groups 1..5, one per image, the image's two rows sharing it.
        Assert.Equal([1u, 1u, 2u, 2u, 3u, 3u, 4u, 4u, 5u, 5u], groups[5..]);
        Assert.All(groups[5..].Zip(paths[5..]).GroupBy(p => p.First), g => Assert.Single(g.Select(p => p.Second).Distinct()));
        Assert.Equal(fit.SyntheticRows.Select(r => r.Group), groups[5..]);

        // A state file written before groups existed has no group column name: it loads with the default, and the groups come from the sample ids.
        string copy = Path.Combine(tiny.Root, "state-without-groups");
        fit.SaveState(copy);
        string stateFile = Path.Combine(copy, DiffIIAugmentEstimator.StateFileName);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(stateFile))!.AsObject();
        Assert.True(json.Remove("synthetic_group_column"));
        File.WriteAllText(stateFile, json.ToJsonString());
        var old = DiffIIAugmentTransformer.LoadFrom(copy);
        Assert.Equal("SyntheticGroup", old.SyntheticGroupColumnName);
        Assert.Equal(groups[5..], old.Transform(tiny.Train).GetColumn<uint>("SyntheticGroup").Skip(5).ToArray());

        // A renamed column is written under its name and kept by SaveState.
        var renamed = new DiffIIAugmentEstimator(estimator.Options with { SyntheticGroupColumnName = "Image" }).Fit(tiny.Train);
        Assert.Equal(groups, renamed.Transform(tiny.Train).GetColumn<uint>("Image").ToArray());
        string renamedCopy = Path.Combine(tiny.Root, "state-renamed-group");
        renamed.SaveState(renamedCopy);
        Assert.Equal("Image", DiffIIAugmentTransformer.LoadFrom(renamedCopy).SyntheticGroupColumnName);
    }

    sealed class MixedRow
    {
        public string Label { get; set; } = "";
        public bool IsSynthetic { get; set; }
        public float SampleWeight { get; set; }
        public uint SyntheticGroup { get; set; }
        public string ImagePath { get; set; } = "";
    }

    [Fact]
    public void DiffMixImages_UnderReplacement_AreDrawnWhole_ForTheirLargestWeightsClass()
    {
        var fit = new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "cache-diffmix"), Strategy.DiffMix) with { ExpansionRate = 1 }).Fit(tiny.Train);
        var ml = new MLContext(seed: 1);
        var augmented = ml.Data.Cache(fit.Transform(tiny.Train));
        var rowsOf = fit.SyntheticRows.GroupBy(r => r.Group).ToDictionary(g => g.Key, g => g.ToList());
        var classOf = rowsOf.ToDictionary(p => p.Key, p => p.Value.MaxBy(r => r.Weight)!.ClassName);
        var originals = tiny.Train.GetColumn<string>("Label").ToArray();

        var mixing = ml.Data.ReplacementMixing(augmented, "Label", probability: 1.0, seed: 2);
        for (int pass = 0; pass < 4; pass++)
        {
            var rows = ml.Data.CreateEnumerable<MixedRow>(mixing, reuseRowObject: false).ToList();
            var drawn = rows.Where(r => r.IsSynthetic).GroupBy(r => r.SyntheticGroup).ToList();
            foreach (var image in drawn)
            {
                // Both labels of the image, each with the weight the augmenter gave it, as often as each other.
                var expected = rowsOf[image.Key];
                int times = image.Count() / expected.Count;
                Assert.Equal(expected.Count * times, image.Count());
                Assert.Equal(expected.SelectMany(r => Enumerable.Repeat((r.ClassName, r.Weight, r.ImagePath), times)).Order(),
                    image.Select(r => (r.Label, r.SampleWeight, r.ImagePath)).Order());
            }
            // p = 1: an original stays only when no image has its class as the largest weight; the others are
            // replaced one for one by images of their class.
            foreach (var c in originals.Distinct())
            {
                int kept = rows.Count(r => !r.IsSynthetic && r.Label == c);
                int images = drawn.Where(i => classOf[i.Key] == c).Sum(i => i.Count() / rowsOf[i.Key].Count);
                Assert.Equal(originals.Count(l => l == c), kept + images);
                Assert.Equal(classOf.ContainsValue(c) ? 0 : originals.Count(l => l == c), kept);
            }
        }
    }

    [Fact]
    public void SyntheticGroupColumn_NameErrors()
    {
        var clash = Assert.Throws<ArgumentException>(() => new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "never-used")) with { SyntheticGroupColumnName = "SampleWeight" }));
        Assert.Contains("five different names", clash.Message);
        Assert.Contains("SyntheticGroupColumnName is empty", Assert.Throws<ArgumentException>(() =>
            new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "never-used")) with { SyntheticGroupColumnName = "" })).Message);

        var taken = Ml.Transforms.CopyColumns("SyntheticGroup", "Label").Fit(tiny.Train).Transform(tiny.Train);
        var error = FitError(new DiffIIAugmentEstimator(TinyAugment.Options(Path.Combine(tiny.Root, "never-used"))), taken);
        Assert.Contains("already has a column 'SyntheticGroup'", error.Message);
        Assert.Contains("'SyntheticGroup'", Assert.Throws<ArgumentOutOfRangeException>(() => tiny.PathFit.GetOutputSchema(taken.Schema)).Message);
        Assert.False(Directory.Exists(Path.Combine(tiny.Root, "never-used")));
    }

    [Fact]
    public void TheMethodsLimits_AreCheckedWhenTheEstimatorIsMade_NotAtFit()
    {
        string never = Path.Combine(tiny.Root, "never-made");
        var noSuffix = Assert.Throws<ArgumentException>(() => new DiffIIAugmentEstimator(TinyAugment.Options(never) with { SplitRatio = 0.3, Suffixes = [] }));
        Assert.Contains("needs at least one prompt suffix", noSuffix.Message);
        var nanGuidance = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new DiffIIAugmentEstimator(TinyAugment.Options(never) with { Generation = new GenerationOptions { GuidanceScale = double.NaN } }));
        Assert.Contains("Generation.GuidanceScale", nanGuidance.Message);
        _ = new DiffIIAugmentEstimator(TinyAugment.Options(never) with { SplitRatio = 0, Suffixes = [] });
        Assert.False(Directory.Exists(never));
    }
}
