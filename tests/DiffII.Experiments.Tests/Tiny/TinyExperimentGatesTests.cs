using System.Text.Json.Nodes;
using DiffII.Augmentation;
using DiffII.Experiments.Tiny;

namespace DiffII.TinyWorld.Tests.Experiment;

/// <summary>The gates a tiny experiment measures: the concept gate, and the 5-shot numbers merged into gates.json.</summary>
public sealed class TinyExperimentGatesTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-tiny-gates-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    static string Subset => FashionMnistSubset.Find() ?? throw new DirectoryNotFoundException("The shipped Fashion-MNIST subset was not found above the test folder.");
    static string Models => Path.Combine(Path.GetDirectoryName(Subset)!, "..", "models");

    static RunResult Run(string method, long seed, double id, double shifted, double? faithfulness = null, double? concept = null) => new()
    {
        Shots = 5, Seed = seed, Method = method, Strategy = method == "original" ? null : "diff-ii", SplitRatio = 0.3,
        Accuracy = [new("L-BFGS", TinyExperiment.InDistribution, id, id), new("L-BFGS", TinyExperiment.Shifted, shifted, shifted)],
        Faithfulness = faithfulness, ConceptFromNoise = concept,
    };

    [Fact]
    public void Gates_AreTheFiveShotMeansInPercent_WithTheLargerSeedSpread()
    {
        var options = TinyExperimentOptions.Quick(Path.Combine(_root, "w"), "unused") with { JudgePath = "judge" };
        var runs = new[]
        {
            Run("original", 1, 0.50, 0.30), Run("original", 2, 0.52, 0.32),
            Run("diff-ii", 1, 0.48, 0.34, 0.40, 0.20), Run("diff-ii", 2, 0.50, 0.30, 0.50, 0.30),
            Run("diff-ii s=0.7", 1, 0.1, 0.1, 0.1, 0.9),
        };
        var gates = TinyExperimentGates.Of(runs, options);
        Assert.Equal(51, gates["original_in"], 9);
        Assert.Equal(31, gates["original_shifted"], 9);
        Assert.Equal(49, gates["diffii_in"], 9);
        Assert.Equal(32, gates["diffii_shifted"], 9);
        Assert.Equal(100 * Math.Sqrt(0.0008), gates["seed_std_shifted"], 9); // Diff-II's 34 / 30 spread beats the originals' 30 / 32
        Assert.Equal(45, gates["diffii_faithfulness"], 9);
        Assert.Equal(25, gates["concept_from_noise"], 9);

        // One seed: no spread to report; other shot counts: no accuracy gates at all.
        Assert.DoesNotContain("seed_std_shifted", TinyExperimentGates.Of(runs.Where(r => r.Seed == 1).ToList(), options).Keys);
        Assert.Empty(TinyExperimentGates.Of(runs.Select(r => r with { Shots = 10 }).ToList(), options));
    }

    [Fact]
    public void Merging_KeepsTheFilesOtherGates_AndADamagedFileIsNamedAndLeftAlone()
    {
        string path = Path.Combine(_root, "gates.json");
        File.WriteAllText(path, """{ "vae_relative": 91.7, "diffii_in": 1 }""");
        TinyExperimentGates.Merge(path, new Dictionary<string, double> { ["diffii_in"] = 48.123456, ["concept_from_noise"] = 12.5 });
        var merged = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Assert.Equal(91.7, (double)merged["vae_relative"]!);
        Assert.Equal(48.12, (double)merged["diffii_in"]!);
        Assert.Equal(12.5, (double)merged["concept_from_noise"]!);

        File.WriteAllText(path, "[1, 2");
        var e = Assert.Throws<InvalidDataException>(() => TinyExperimentGates.Merge(path, new Dictionary<string, double> { ["diffii_in"] = 1 }));
        Assert.Contains(path, e.Message);
        Assert.Equal("[1, 2", File.ReadAllText(path));
    }

    [Fact]
    public void ConceptGate_IsMeasuredOncePerConcepts_WithTheJudge_AndWrittenToTheGatesFile()
    {
        string gatesPath = Path.Combine(_root, "gates.json");
        File.WriteAllText(gatesPath, """{ "vae_relative": 77.6 }""");
        var options = new TinyExperimentOptions
        {
            WorkFolder = Path.Combine(_root, "run"), ModelPath = Path.Combine(Models, "tiny-sd"), FashionMnistFolder = Subset,
            JudgePath = Path.Combine(Models, "tiny-judge"), GatesPath = gatesPath, ConceptSamplesPerClass = 2,
            Shots = [5], Seeds = [1], TestPerClass = 2, ReferencePerClass = 0, InterpolationStrips = 0,
            Methods = [ExperimentMethod.Original, ExperimentMethod.Of(Strategy.DiffII), ExperimentMethod.Of(Strategy.DiffAug)],
            ExpansionRate = 0.2, LearnSteps = 2, LearnBatch = 2, LoraRank = 2, InversionSteps = 2, SampleSteps = 2, GenerationBatch = 10,
        };
        var stages = new List<string>();
        var outcome = new TinyExperiment(options).Run(new Progress(p => stages.Add(p.Stage)));

        var byMethod = outcome.Runs.ToDictionary(r => r.Method);
        Assert.Null(byMethod["original"].ConceptFromNoise);
        double concept = byMethod["diff-ii"].ConceptFromNoise!.Value;
        Assert.InRange(concept, 0, 1);
        Assert.Equal(0, concept * 20 % 1, 9); // 20 samples in all: a whole number of hits
        // Diff-II and Diff-Aug share one concept learning, so one gate.
        Assert.Equal(concept, byMethod["diff-aug"].ConceptFromNoise);
        Assert.Single(stages.Where(s => s.StartsWith("concept gate", StringComparison.Ordinal)).Distinct());
        Assert.True(File.Exists(Path.Combine(options.WorkFolder, "runs", "k5", "seed1", "concepts-tokens-lora", "concept-from-noise.json")));

        var gates = JsonNode.Parse(File.ReadAllText(gatesPath))!.AsObject();
        Assert.Equal(77.6, (double)gates["vae_relative"]!);
        Assert.Equal(Math.Round(100 * concept, 2), (double)gates["concept_from_noise"]!);
        foreach (var key in new[] { "original_in", "original_shifted", "diffii_in", "diffii_shifted", "diffii_faithfulness" }) Assert.NotNull(gates[key]);
        Assert.Null(gates["seed_std_shifted"]);

        string report = File.ReadAllText(Path.Combine(options.WorkFolder, "report", "report.md"));
        Assert.Contains("Concept gate, 5-shot, tokens + LoRA:", report);
    }

    sealed class Progress(Action<ExperimentProgress> report) : IProgress<ExperimentProgress>
    {
        public void Report(ExperimentProgress value) => report(value);
    }
}
