using System.Text.Json;
using DiffII.Cli.Commands;
using DiffII.MLNet;
using DiffII.Experiments.Classification;
using Microsoft.ML;
using Microsoft.ML.Data;
using SkiaSharp;

namespace DiffII.Cli.Tests;

public sealed class ExperimentTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-cli-exp-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    [Fact]
    public async Task Experiment_PrintsItsTable_WritesTheReportAndPlots_AndSavesAModelThatLoadsAndPredicts()
    {
        string images = Cli.Images(Path.Combine(_root, "images"), ("cardinal", 4), ("jay", 4));
        string work = Path.Combine(_root, "work");
        string model = Path.Combine(_root, "out", "model.zip");
        var run = await Cli.Run(["experiment", .. Cli.Tiny(work, images, "--expansion", "1", "--test-fraction", "0.25", "--trainers", "lbfgs",
            "--baselines", "real-guidance", "--out", model)]);
        Assert.True(run.Code == 0, run.ToString());

        // The table: originals, then each method's augmented training set.
        Assert.Contains("| Trainer", run.Stdout);
        var tableRows = run.Stdout.Split('\n').Where(l => l.StartsWith("| LbfgsMaximumEntropy", StringComparison.Ordinal))
            .Select(l => l.Split('|', StringSplitOptions.TrimEntries)[1..^1]).ToList();
        // Trainer, method, mixing, micro, macro, log loss, training rows (6 originals + 6 synthetic), seconds.
        Assert.Equal([["originals", "-", "6"], ["diff-ii", "concat", "12"], ["real-guidance", "concat", "12"]],
            tableRows.Select(r => new[] { r[1], r[2], r[6] }).ToArray());
        Assert.All(tableRows, r => Assert.InRange(double.Parse(r[3], System.Globalization.CultureInfo.InvariantCulture), 0, 1));
        Assert.Contains($"saved {model}", run.Stdout);

        string report = Path.Combine(work, "report", "report.md");
        string text = File.ReadAllText(report);
        Assert.Contains("## Results", text);
        Assert.Contains("## Per-class accuracy", text);
        Assert.Contains("## Settings", text);
        Assert.Contains("![accuracy](accuracy.png)", text);
        foreach (var png in new[] { "accuracy.png", "grid-00-cardinal.png", "grid-01-jay.png" })
        {
            Assert.Contains(png, text);
            using var bitmap = SKBitmap.Decode(Path.Combine(work, "report", png));
            Assert.NotNull(bitmap);
            Assert.True(bitmap.Width > 100 && bitmap.Height > 100);
        }
        Assert.Equal(6, File.ReadAllLines(Path.Combine(work, "runs", "diff-ii", "manifest.jsonl")).Length);
        Assert.Equal(6, File.ReadAllLines(Path.Combine(work, "runs", "real-guidance", "manifest.jsonl")).Length);

        var ml = new MLContext(seed: 3);
        var loaded = ClassifierModel.Load(ml, model, out var schema);
        Assert.NotNull(schema.GetColumnOrNull("ImagePath"));
        using var engine = ml.Model.CreatePredictionEngine<ExperimentCommand.ImageRow, ClassifierPrediction>(loaded);
        var prediction = engine.Predict(new ExperimentCommand.ImageRow { ImagePath = Path.Combine(images, "jay", "0.png") });
        Assert.Contains(prediction.PredictedLabel, new[] { "cardinal", "jay" });
        Assert.Equal(2, prediction.Score.Length);
        Assert.Equal(1.0, prediction.Score.Sum(), 4);
    }

    sealed class MixedRow
    {
        public string Label { get; set; } = "";
        public bool IsSynthetic { get; set; }
        public float SampleWeight { get; set; }
        public uint SyntheticGroup { get; set; }
    }

    [Fact]
    public void AugmentedTrainingView_PutsEachImagesRows_InOneSyntheticGroup_SoReplacementDrawsThemTogether()
    {
        string images = Cli.Images(Path.Combine(_root, "images"), ("cardinal", 2), ("jay", 2));
        var set = ImageSet.FromFolder(images);
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(set.Items.Select(i => new ExperimentCommand.ImageRow { ImagePath = i.Path, Label = i.Label }).ToList());
        DiffII.SyntheticImage Image(string id, params DiffII.Augmentation.ManifestLabel[] labels)
        {
            string path = Path.Combine(_root, id + ".png");
            File.Copy(set.Items[0].Path, path);
            return new(id, path, labels[0].ClassName, labels, new DiffII.Augmentation.ManifestEntry
            {
                Id = id, File = id + ".png", ClassName = labels[0].ClassName, ClassIndex = 0, Labels = labels, Strategy = "diff-mix", Sources = [], Prompt = "p", Seed = 1,
            });
        }
        var augmented = ExperimentCommand.AugmentedTrainingView(train,
        [
            Image("mix-0", new("cardinal", 0.29f), new("jay", 0.71f)),
            Image("mix-1", new("jay", 0.16f), new("cardinal", 0.84f)),
        ]);
        Assert.Equal([0u, 0u, 0u, 0u, 1u, 1u, 2u, 2u], augmented.GetColumn<uint>("SyntheticGroup").ToArray());
        Assert.Equal([1f, 1f, 1f, 1f, 0.29f, 0.71f, 0.16f, 0.84f], augmented.GetColumn<float>("SampleWeight").ToArray());

        // p = 1: each original is replaced by the image whose largest weight is its class, both rows of it.
        var mixed = ml.Data.ReplacementMixing(augmented, "Label", probability: 1.0, seed: 1);
        var pass = ml.Data.CreateEnumerable<MixedRow>(mixed, reuseRowObject: false).ToArray(); // one cursor: one pass
        Assert.All(pass, r => Assert.True(r.IsSynthetic));
        // Two originals per class, each replaced by both rows of its class's image.
        Assert.Equal([(1u, "cardinal", 0.29f), (1u, "cardinal", 0.29f), (1u, "jay", 0.71f), (1u, "jay", 0.71f),
                      (2u, "cardinal", 0.84f), (2u, "cardinal", 0.84f), (2u, "jay", 0.16f), (2u, "jay", 0.16f)],
            pass.Select(r => (r.SyntheticGroup, r.Label, r.SampleWeight)).Order().ToArray());
    }

    [Fact]
    public void TheSplit_IsStratified_Seeded_AndKeepsEveryClassInTraining()
    {
        string images = Cli.Images(Path.Combine(_root, "images"), ("a", 10), ("b", 5), ("c", 1));
        var set = ImageSet.FromFolder(images);
        var (train, test) = ExperimentCommand.Split(set, 0.2, 7);
        Assert.Equal(2, test.Items.Count(i => i.Label == "a"));
        Assert.Equal(1, test.Items.Count(i => i.Label == "b"));
        Assert.Equal(0, test.Items.Count(i => i.Label == "c"));
        Assert.Equal(16, train.Items.Count + test.Items.Count);
        Assert.Empty(train.Items.Select(i => i.Id).Intersect(test.Items.Select(i => i.Id)));
        var (_, sameSeed) = ExperimentCommand.Split(set, 0.2, 7);
        Assert.Equal(test.Items.Select(i => i.Id), sameSeed.Items.Select(i => i.Id));
        var others = Enumerable.Range(8, 6).Select(s => string.Join(",", ExperimentCommand.Split(set, 0.2, s).Test.Items.Select(i => i.Id))).ToHashSet();
        Assert.True(others.Count > 1, "different seeds should give different splits");
    }
}
