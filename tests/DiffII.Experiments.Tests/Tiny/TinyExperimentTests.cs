using System.Text.Json;
using DiffII.Augmentation;
using DiffII.Experiments.Tiny;

namespace DiffII.TinyWorld.Tests.Experiment;

public sealed class TinyExperimentTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-tiny-exp-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    static string Subset => FashionMnistSubset.Find() ?? throw new DirectoryNotFoundException("The shipped Fashion-MNIST subset was not found above the test folder.");

    FewShotWorld World(string name) =>
        new(FashionMnist.Load(FashionMnistSplit.Train, Subset), FashionMnist.Load(FashionMnistSplit.Test, Subset), Path.Combine(_root, name));

    [Fact]
    public void JudgeFaithfulness_RecognisesRealPictures_AndNotMislabelledOnes()
    {
        // The committed judge on rendered real test pictures: what a perfectly faithful generator would score.
        string judgeFolder = Path.Combine(Path.GetDirectoryName(Subset)!, "..", "models", "tiny-judge");
        using var judge = DiffII.TinyWorld.Judging.TinyJudge.Load(judgeFolder);
        var pictures = World("judge").ShiftedTest(3);
        var paths = pictures.Select(p => p.Path).ToList();
        var right = pictures.Select(p => p.ClassName).ToList();
        var wrong = pictures.Select(p => FewShotWorld.Classes[(FewShotWorld.Classes.ToList().IndexOf(p.ClassName) + 5) % 10]).ToList();
        double faithful = TinyExperiment.JudgeAgreement(judge, paths, right);
        double mislabelled = TinyExperiment.JudgeAgreement(judge, paths, wrong);
        Assert.InRange(faithful, 0.6, 1.0);
        Assert.InRange(mislabelled, 0.0, 0.2);
    }

    [Fact]
    public void FewShotSets_AreSeeded_Nested_AndInTheNarrowContext()
    {
        var a = World("a");
        var five = a.FewShot(5, seed: 3);
        var ten = a.FewShot(10, seed: 3);
        var otherSeed = a.FewShot(5, seed: 4);

        Assert.Equal(50, five.Count);
        Assert.All(FewShotWorld.Classes, c => Assert.Equal(5, five.Count(i => i.ClassName == c)));
        Assert.Subset(ten.Select(i => i.ItemIndex).ToHashSet(), five.Select(i => i.ItemIndex).ToHashSet());
        Assert.NotEqual(five.Select(i => i.ItemIndex), otherSeed.Select(i => i.ItemIndex));
        Assert.All(five, i => Assert.Equal(BackgroundPattern.Plain, i.Scene.Pattern));
        Assert.All(five, i => Assert.Contains(i.Scene.Background.Name, new[] { "black", "gray", "white" }));

        // Another folder, same seed: the same pictures, byte for byte.
        var b = World("b").FewShot(5, seed: 3);
        Assert.Equal(five.Select(i => File.ReadAllBytes(i.Path)), b.Select(i => File.ReadAllBytes(i.Path)));
    }

    [Fact]
    public void TestSets_ShowTheSameItems_InTheTrainingContextAndInContextsTheTrainingSetNeverHas()
    {
        var world = World("w");
        var id = world.InDistributionTest(4);
        var shifted = world.ShiftedTest(4);
        Assert.Equal(id.Select(i => (i.ClassName, i.ItemIndex)), shifted.Select(i => (i.ClassName, i.ItemIndex)));
        Assert.All(id, i => Assert.Equal(BackgroundPattern.Plain, i.Scene.Pattern));
        Assert.All(shifted, i => Assert.NotEqual(BackgroundPattern.Plain, i.Scene.Pattern));
        var fewShotBackgrounds = SceneDistribution.FewShot.BackgroundColors.Select(c => c.Name).ToHashSet();
        Assert.All(shifted, i => Assert.DoesNotContain(i.Scene.Background.Name, fewShotBackgrounds));
    }

    [Fact]
    public void Reference_LeavesOutTheExcludedItems_AndAsksForTheFullDataSetWhenTooFewRemain()
    {
        var world = World("r");
        var used = world.FewShot(5, 1).Select(i => i.ItemIndex).ToHashSet();
        var reference = world.Reference(5, used);
        Assert.DoesNotContain(reference, i => used.Contains(i.ItemIndex));
        var e = Assert.Throws<ArgumentException>(() => world.Reference(6, used));
        Assert.Contains("dataset-fashion-mnist", e.Message);
    }

    [Fact]
    public void Diversity_IsTheMeanPairwiseCosineDistanceWithinClasses()
    {
        // Class a: orthogonal pair (distance 1); class b: identical pair (0) and a third at 90° to both (1, 1): mean 2/3.
        var features = new[] { new[] { 1f, 0f, 0f }, new[] { 0f, 1f, 0f }, new[] { 1f, 1f, 0f }, new[] { 2f, 2f, 0f }, new[] { 0f, 0f, 3f } };
        double d = TinyExperiment.Diversity(["a", "a", "b", "b", "b"], features)!.Value;
        Assert.Equal((1.0 + 2.0 / 3.0) / 2, d, 12);
        Assert.Null(TinyExperiment.Diversity(["a", "b"], features[..2]));
    }

    [Fact]
    public void Summary_AveragesSeeds_WithTheSampleStandardDeviation()
    {
        RunResult Run(long seed, double id, double shifted) => new()
        {
            Shots = 5, Seed = seed, Method = "diff-ii", SplitRatio = 0.3, SyntheticImages = 250,
            Accuracy = [new("lbfgs", TinyExperiment.InDistribution, id, id), new("lbfgs", TinyExperiment.Shifted, shifted, shifted)],
        };
        var summary = TinyExperimentReport.Summarise([Run(1, 0.5, 0.2), Run(2, 0.7, 0.4), Run(3, 0.6, 0.3)]);
        var row = Assert.Single(summary);
        Assert.Equal(0.6, row.InDistributionMean, 12);
        Assert.Equal(0.1, row.InDistributionStd, 12);
        Assert.Equal(0.3, row.ShiftedMean, 12);
        Assert.Equal(3, row.Seeds);
        string md = TinyExperimentReport.AccuracyTable(summary, "lbfgs", [5], ["diff-ii"]).ToMarkdown();
        Assert.Contains("| diff-ii | 60.0 ± 10.0 | 30.0 ± 10.0 |", System.Text.RegularExpressions.Regex.Replace(md, " +", " "));
    }

    [Fact]
    public void SplitSweep_AddsDiffIIArmsAtTheFirstShotCountOnly()
    {
        var options = TinyExperimentOptions.Quick(Path.Combine(_root, "s"), "unused") with { Shots = [5, 10], SplitSweep = [0.3, 0.7] };
        var experiment = new TinyExperiment(options);
        Assert.Equal(["original", "diff-ii", "diff-ii s=0.7"], experiment.MethodsFor(5).Select(m => m.Name));
        Assert.Equal(["original", "diff-ii"], experiment.MethodsFor(10).Select(m => m.Name));
        Assert.Equal(0.3, TinyExperiment.SplitRatioOf(ExperimentMethod.Of(Strategy.DiffII), 5));
        Assert.Equal(0.1, TinyExperiment.SplitRatioOf(ExperimentMethod.Of(Strategy.DiffII), 10));
        Assert.Equal(0, TinyExperiment.SplitRatioOf(ExperimentMethod.Of(Strategy.InterpolationOnly), 5));
    }

    [Fact]
    public void SingleImageStudy_AddsOneShotRuns_WithTheWaysToPairALonePicture()
    {
        var options = TinyExperimentOptions.Quick(Path.Combine(_root, "one"), "unused") with { SingleImageStudy = true };
        var experiment = new TinyExperiment(options);
        Assert.Equal([5, 1], experiment.AllShots);
        Assert.Equal(["original", "two-stage-only", "diff-ii mirror", "diff-ii mirror+crops"], experiment.MethodsFor(1).Select(m => m.Name));
        Assert.Equal([null, null, DiffII.Inversion.ExtraInversions.MirrorSingleImageClasses, DiffII.Inversion.ExtraInversions.MirrorAndCropsSingleImageClasses],
            experiment.MethodsFor(1).Select(m => m.Extra));
        Assert.Equal(["original", "diff-ii"], experiment.MethodsFor(5).Select(m => m.Name));
    }

    TinyExperimentOptions Small(string work) => new()
    {
        WorkFolder = Path.Combine(_root, work), ModelPath = SharedData.TinyA(), FashionMnistFolder = Subset,
        Shots = [2], Seeds = [1], TestPerClass = 2, ReferencePerClass = 3, InterpolationStrips = 1,
        Methods = [ExperimentMethod.Original, ExperimentMethod.Of(Strategy.DiffII), ExperimentMethod.Of(Strategy.DiffMix)],
        ExpansionRate = 1, LearnSteps = 2, LearnBatch = 2, LoraRank = 2, InversionSteps = 2, SampleSteps = 2, GenerationBatch = 10,
    };

    [Fact]
    public void WholeExperiment_OnATinyGenerator_WritesTheReport_AndARerunRedoesNothing()
    {
        var options = Small("run");
        var outcome = new TinyExperiment(options).Run();

        Assert.Equal(["original", "diff-ii", "diff-mix"], outcome.Runs.Select(r => r.Method));
        Assert.All(outcome.Runs, r => Assert.Equal(2, r.Accuracy.Count));
        Assert.All(outcome.Runs, r => Assert.All(r.Accuracy, a => Assert.InRange(a.MicroAccuracy, 0, 1)));
        Assert.Equal([0, 20, 20], outcome.Runs.Select(r => r.SyntheticImages));
        Assert.All(outcome.Runs.Skip(1), r => Assert.InRange(r.Faithfulness!.Value, 0, 1));
        Assert.All(outcome.Runs, r => Assert.True(r.Diversity > 0));
        Assert.NotNull(outcome.Reference);

        string report = Path.Combine(options.WorkFolder, "report");
        string md = File.ReadAllText(Path.Combine(report, "report.md"));
        string flat = System.Text.RegularExpressions.Regex.Replace(md, " +", " ");
        foreach (var method in new[] { "| original |", "| diff-ii |", "| diff-mix |" }) Assert.Contains(method, flat);
        var csv = File.ReadAllLines(Path.Combine(report, "results.csv"));
        Assert.Equal(1 + 3 * 2, csv.Length);
        Assert.Equal(10, Directory.GetFiles(Path.Combine(report, "grids"), "class-*.png").Length);
        Assert.Single(Directory.GetFiles(Path.Combine(report, "grids"), "interpolation-*.png"));
        Assert.True(File.Exists(Path.Combine(report, "accuracy.png")));
        Assert.True(File.Exists(Path.Combine(report, "faithfulness-diversity.png")));

        // The two generating methods share one concept learning.
        Assert.True(Directory.Exists(Path.Combine(options.WorkFolder, "runs", "k2", "seed1", "concepts-tokens-lora", "concepts")));
        Assert.False(Directory.Exists(Path.Combine(options.WorkFolder, "runs", "k2", "seed1", "concepts-tokens")));

        // A rerun reads every result back: no stage reports work.
        var stages = new List<string>();
        var again = new TinyExperiment(options).Run(new Progress(p => { if (p.Total > 0 && p.Done < p.Total) stages.Add(p.Stage); }));
        Assert.DoesNotContain(stages, s => s.StartsWith("learn", StringComparison.Ordinal) || s.StartsWith("generate", StringComparison.Ordinal) || s.StartsWith("featurise", StringComparison.Ordinal));
        Assert.Equal(JsonSerializer.Serialize(outcome.Runs), JsonSerializer.Serialize(again.Runs));
    }

    [Fact]
    public void StoppedExperiment_ResumesToTheResultsOfAnUninterruptedRun()
    {
        var straight = new TinyExperiment(Small("straight") with { ReferencePerClass = 0, InterpolationStrips = 0 }).Run();

        var options = Small("stopped") with { ReferencePerClass = 0, InterpolationStrips = 0 };
        using var cts = new CancellationTokenSource();
        var progress = new Progress(p => { if (p.Stage.StartsWith("generate diff-mix", StringComparison.Ordinal) && p.Done > 0) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => new TinyExperiment(options).Run(progress, cts.Token));
        Assert.True(File.Exists(Path.Combine(options.WorkFolder, "runs", "k2", "seed1", "diff-ii", "result.json")));
        Assert.False(File.Exists(Path.Combine(options.WorkFolder, "runs", "k2", "seed1", "diff-mix", "result.json")));

        var resumed = new TinyExperiment(options).Run();
        Assert.Equal(straight.Runs.Select(r => (r.Method, r.SyntheticImages, r.Accuracy.Select(a => a.MicroAccuracy).ToList())).ToList().Select(x => $"{x.Method}:{x.SyntheticImages}:{string.Join(',', x.Item3)}"),
                     resumed.Runs.Select(r => $"{r.Method}:{r.SyntheticImages}:{string.Join(',', r.Accuracy.Select(a => a.MicroAccuracy))}"));
        var a = Directory.GetFiles(Path.Combine(_root, "straight", "runs", "k2", "seed1", "diff-mix", "synthetic"), "*.png", SearchOption.AllDirectories).Order().Select(File.ReadAllBytes);
        var b = Directory.GetFiles(Path.Combine(options.WorkFolder, "runs", "k2", "seed1", "diff-mix", "synthetic"), "*.png", SearchOption.AllDirectories).Order().Select(File.ReadAllBytes);
        Assert.Equal(a, b);
    }

    sealed class Progress(Action<ExperimentProgress> report) : IProgress<ExperimentProgress>
    {
        public void Report(ExperimentProgress value) => report(value);
    }

    [Theory]
    [InlineData(50, 50)]    // 5 shots: 4 batches of 16 per epoch
    [InlineData(100, 29)]   // 10 shots: 7 batches per epoch
    [InlineData(5000, 1)]   // more originals than the step budget: one epoch
    public void FineTuneTrainer_GetsTheSameStepBudgetAtEveryShotCount(int originals, int epochs)
    {
        var trainer = TinyExperimentOptions.Trainer("finetune", seed: 3, originals);
        var estimator = (DiffII.MLNet.FineTuning.ResNet18FineTuneTrainer)trainer.Create(new Microsoft.ML.MLContext(1),
            new DiffII.Experiments.Classification.TrainerColumns("Label", "Features", null) { Image = "ImagePath" });
        Assert.Equal((epochs, TinyExperimentOptions.FineTuneBatch, 3, "ImagePath"), (estimator.Options.Epochs, estimator.Options.BatchSize, estimator.Options.Seed, estimator.Options.ImageColumnName));
        Assert.Equal("finetune", TinyExperiment.TrainerLabel(trainer.Name));
        Assert.Throws<ArgumentException>(() => TinyExperimentOptions.Trainer("resnet50", 1));
    }
}
