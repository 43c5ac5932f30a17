using System.Diagnostics;
using System.Text.Json;
using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Runtime;
using DiffII.Experiments.Classification;
using DiffII.Imaging;
using DiffII.Inversion;
using DiffII.Storage;
using DiffII.TinyWorld;
using DiffII.TinyWorld.Judging;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace DiffII.Experiments.Tiny;

/// <summary>Progress of the experiment: a stage ("learn k5 seed1", "generate k5 seed1 diff-ii", ...), how far, the loss where there is one.</summary>
public sealed record ExperimentProgress(string Stage, int Done, int Total, double? Loss = null);

/// <summary>One classifier's accuracy on one test set, for one method, shot count and seed.</summary>
public sealed record AccuracyResult(string Trainer, string TestSet, double MicroAccuracy, double MacroAccuracy);

/// <summary>Everything measured for one method at one shot count and seed; saved as JSON so a rerun skips it.</summary>
public sealed record RunResult
{
    public required int Shots { get; init; }
    public required long Seed { get; init; }
    public required string Method { get; init; }
    public string? Strategy { get; init; }
    public double SplitRatio { get; init; }
    public int SyntheticImages { get; init; }
    public int FailedImages { get; init; }
    public double GenerationSeconds { get; init; }
    public required IReadOnlyList<AccuracyResult> Accuracy { get; init; }
    /// <summary>Share of synthetic images <see cref="FaithfulnessBy"/> labels as their intended class (null: not measured).</summary>
    public double? Faithfulness { get; init; }
    /// <summary>What scored <see cref="Faithfulness"/>: "judge" (models/tiny-judge) or "reference" (L-BFGS on ResNet18 features).</summary>
    public string? FaithfulnessBy { get; init; }
    /// <summary>Mean pairwise cosine distance of ResNet18 features within a class, averaged over classes.</summary>
    public double? Diversity { get; init; }
    /// <summary>The concept gate of the concepts this run used (<see cref="TinyExperiment.ConceptFromNoise"/>); null: not measured.</summary>
    public double? ConceptFromNoise { get; init; }
    /// <summary>Where the run's images and manifest are.</summary>
    public string? WorkFolder { get; init; }
}

/// <summary>The results of a whole experiment and where its report went.</summary>
public sealed record ExperimentOutcome(IReadOnlyList<RunResult> Runs, ReferenceResult? Reference, IReadOnlyList<string> ReportFiles, TimeSpan Elapsed);

/// <summary>The reference classifier (plenty of real data in every context): its own test accuracy, for scale.</summary>
public sealed record ReferenceResult(int ImagesPerClass, IReadOnlyList<AccuracyResult> Accuracy);

/// <summary>
/// Runs the tiny-world experiment: for each shot count and seed, renders the few-shot set, learns the concepts once
/// (tokens + LoRA, and tokens only for DA-Fusion) and shares them across methods, generates each method's synthetic
/// images, featurises everything with ResNet18, trains every classifier on the originals with the replacement
/// schedule, and tests it in the training context and in shifted contexts. Every step is cached in the work folder.
/// </summary>
public sealed partial class TinyExperiment(TinyExperimentOptions options)
{
    readonly string _work = Path.GetFullPath(options.WorkFolder);
    readonly Device _device = DiffII.Diffusion.Runtime.TorchRuntime.ParseDevice(options.Device);
    TinyJudge? _judge;

    public const string InDistribution = "in-distribution", Shifted = "shifted";

    public ExperimentOutcome Run(IProgress<ExperimentProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var held = HeldTensors.Hold();
        var clock = Stopwatch.StartNew();
        Validate();
        using var workLock = WorkFolderLock.Acquire(_work);
        using var judge = options.JudgePath is null ? null : TinyJudge.Load(options.JudgePath);
        _judge = judge;
        var (train, test) = LoadFashionMnist();
        var world = new FewShotWorld(train, test, Path.Combine(_work, "data"));
        var features = new FeatureStore(Path.Combine(_work, "features.bin"));

        progress?.Report(new ExperimentProgress("render test sets", 0, 2));
        var testSets = new Dictionary<string, IReadOnlyList<WorldImage>>
        {
            [InDistribution] = world.InDistributionTest(options.TestPerClass),
            [Shifted] = world.ShiftedTest(options.TestPerClass),
        };
        progress?.Report(new ExperimentProgress("render test sets", 2, 2));
        var testFeatures = testSets.ToDictionary(p => p.Key, p => Featurize(features, p.Value.Select(i => i.Path).ToList(), $"featurise {p.Key} test set", progress, cancellationToken));

        ReferenceClassifier? reference = null;
        if (options.ReferencePerClass > 0)
        {
            var used = AllShots.SelectMany(k => options.Seeds.SelectMany(s => world.FewShot(k, s))).Select(i => i.ItemIndex).ToHashSet();
            var referenceImages = world.Reference(options.ReferencePerClass, used);
            var referenceFeatures = Featurize(features, referenceImages.Select(i => i.Path).ToList(), "featurise reference set", progress, cancellationToken);
            reference = ReferenceClassifier.Train(referenceImages.Select(i => i.ClassName).ToList(), referenceFeatures, testSets, testFeatures);
        }

        var runs = new List<RunResult>();
        foreach (int shots in AllShots)
            foreach (long seed in options.Seeds)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var few = world.FewShot(shots, seed);
                var originalFeatures = Featurize(features, few.Select(i => i.Path).ToList(), $"featurise k{shots} seed{seed} originals", progress, cancellationToken);
                var methods = MethodsFor(shots);
                foreach (var method in methods)
                    runs.Add(RunMethod(method, shots, seed, few, originalFeatures, testSets, testFeatures, features, reference, progress, cancellationToken));
            }

        var files = TinyExperimentReport.Write(options, runs, reference, world, this, progress, cancellationToken);
        if (options.GatesPath is not null) TinyExperimentGates.Merge(options.GatesPath, TinyExperimentGates.Of(runs, options));
        return new ExperimentOutcome(runs, reference?.Result, files, clock.Elapsed);
    }

    void Validate()
    {
        if (options.Shots.Count == 0 || options.Shots.Any(k => k < 1)) throw new ArgumentException("Shots must be one or more positive counts.");
        if (options.Seeds.Count == 0) throw new ArgumentException("At least one seed is needed.");
        if (options.Methods.Count == 0) throw new ArgumentException("At least one method is needed.");
        if (options.Methods.Select(m => m.Name).Distinct().Count() != options.Methods.Count) throw new ArgumentException("Method names must differ.");
        if (options.TestPerClass < 1) throw new ArgumentException("The test sets need at least one item per class.");
        if (options.ReplacementProbability is < 0 or > 1) throw new ArgumentException($"The replacement probability must be in [0, 1]; got {options.ReplacementProbability}.");
        foreach (var t in options.Trainers) TinyExperimentOptions.Trainer(t, 0);
        if (!File.Exists(options.ModelPath) && !File.Exists(Path.Combine(options.ModelPath, "model_index.json")))
            throw new FileNotFoundException($"The generator {options.ModelPath} is neither a single-file checkpoint nor a diffusers folder (model_index.json).", options.ModelPath);
    }

    /// <summary>The shot counts run: the configured ones, then one shot for the single-image study.</summary>
    public IReadOnlyList<int> AllShots => options.SingleImageStudy && !options.Shots.Contains(1) ? [.. options.Shots, 1] : options.Shots;

    /// <summary>
    /// The methods of a shot count: the configured ones, plus the split-ratio sweep at the first shot count; at one
    /// shot in the single-image study, <see cref="TinyExperimentOptions.SingleImageMethods"/>.
    /// </summary>
    public IReadOnlyList<ExperimentMethod> MethodsFor(int shots)
    {
        if (shots == 1 && options.SingleImageStudy) return TinyExperimentOptions.SingleImageMethods;
        var methods = options.Methods.ToList();
        if (shots == options.Shots[0])
            foreach (double s in options.SplitSweep)
                if (!methods.Any(m => m.Strategy == Strategy.DiffII && SplitRatioOf(m, shots) == s))
                    methods.Add(ExperimentMethod.Of(Strategy.DiffII, s));
        return methods;
    }

    public static double SplitRatioOf(ExperimentMethod method, int shots) =>
        method.Strategy is { } s && s.UsesSuffixes() ? method.SplitRatio ?? TinyExperimentOptions.DefaultSplitRatio(shots) : 0;

    (FashionMnist Train, FashionMnist Test) LoadFashionMnist()
    {
        string? folder = options.FashionMnistFolder;
        if (folder is null)
        {
            bool debian = File.Exists(Path.Combine(FashionMnist.DebianFolder, "train-images-idx3-ubyte.gz"));
            if (options.Preset == "quick" || !debian)
            {
                folder = FashionMnistSubset.Find()
                    ?? (debian ? FashionMnist.DebianFolder : throw new FileNotFoundException(
                        $"Neither the shipped Fashion-MNIST subset ({FashionMnistSubset.RepositoryFolder}) nor Debian's data set ({FashionMnist.DebianFolder}) was found; " +
                        "run from the repository, install 'dataset-fashion-mnist', or pass the folder of the four *-ubyte.gz files."));
            }
            else folder = FashionMnist.DebianFolder;
        }
        return (FashionMnist.Load(FashionMnistSplit.Train, folder), FashionMnist.Load(FashionMnistSplit.Test, folder));
    }

    internal StableDiffusion LoadGenerator() =>
        StableDiffusion.Load(options.ModelPath, new StableDiffusionLoadOptions { Device = _device, DType = options.DType });

    internal string RunFolder(int shots, long seed, string name) =>
        Path.Combine(_work, "runs", $"k{shots}", $"seed{seed}", Safe(name));

    static string Safe(string name) => new(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '.' ? c : '_').ToArray());

    static IReadOnlyList<LabeledImage> Labeled(IReadOnlyList<WorldImage> images, string root) =>
        images.Select(i => LabeledImage.FromFile(i.Path, i.ClassName, Path.GetRelativePath(root, i.Path).Replace('\\', '/'))).ToList();

    internal AugmentationOptions AugmentationOptionsFor(Strategy strategy, int shots, long seed, double splitRatio, string? conceptsFolder,
        ExtraInversions? extra = null) => new()
    {
        Metaclass = Scene.Metaclass,
        Strategy = strategy,
        Budget = new SampleBudget.Expansion(options.ExpansionRate),
        SplitRatio = splitRatio,
        Suffixes = options.Suffixes,
        Concepts = new ConceptOptions
        {
            Steps = options.LearnSteps, BatchSize = options.LearnBatch, LoraRank = options.LoraRank,
            LoraLearningRate = options.LoraLearningRate, TokenLearningRate = options.TokenLearningRate,
            TrainLora = strategy.NeedsLora(), Seed = seed,
        },
        Inversion = new InversionOptions { Steps = options.InversionSteps, Extra = extra ?? new InversionOptions().Extra },
        Generation = new GenerationOptions { Steps = options.SampleSteps, GuidanceScale = options.GuidanceScale, BatchSize = options.GenerationBatch },
        Seed = seed,
        PretrainedConceptsFolder = conceptsFolder,
    };

    /// <summary>
    /// The concepts a strategy needs, learned once per shot count and seed and shared by every method that needs the
    /// same kind (tokens + LoRA, or tokens only), so methods differ only where the methods differ.
    /// </summary>
    internal string? EnsureConcepts(Strategy strategy, int shots, long seed, IReadOnlyList<WorldImage> few, IProgress<ExperimentProgress>? progress, CancellationToken cancellationToken)
    {
        if (!strategy.NeedsTokens()) return null;
        bool lora = strategy.NeedsLora();
        string folder = RunFolder(shots, seed, lora ? "concepts-tokens-lora" : "concepts-tokens");
        string concepts = Path.Combine(folder, "concepts");
        if (LearnedConcepts.Exists(concepts)) return concepts;
        using var sd = LoadGenerator();
        using var augmenter = new DiffIIAugmenter(sd, AugmentationOptionsFor(lora ? Strategy.DiffAug : Strategy.DAFusion, shots, seed, 0, null), folder);
        string stage = $"{(lora ? "tokens+LoRA" : "tokens")} k{shots} seed{seed}";
        augmenter.LearnConcepts(Labeled(few, _work), Adapt(progress, stage), cancellationToken);
        return concepts;
    }

    RunResult RunMethod(ExperimentMethod method, int shots, long seed, IReadOnlyList<WorldImage> few, IReadOnlyList<float[]> originalFeatures,
        Dictionary<string, IReadOnlyList<WorldImage>> testSets, Dictionary<string, IReadOnlyList<float[]>> testFeatures, FeatureStore features,
        ReferenceClassifier? reference, IProgress<ExperimentProgress>? progress, CancellationToken cancellationToken)
    {
        string folder = RunFolder(shots, seed, method.Name);
        string resultPath = Path.Combine(folder, "result.json");
        if (JsonFile.Read<RunResult>(resultPath) is { } saved && saved.Accuracy.Count == options.Trainers.Count * testSets.Count) return saved;

        double split = SplitRatioOf(method, shots);
        IReadOnlyList<SyntheticImage> synthetic = [];
        int failed = 0;
        var clock = Stopwatch.StartNew();
        string? concepts = null;
        if (method.Strategy is Strategy strategy)
        {
            concepts = EnsureConcepts(strategy, shots, seed, few, progress, cancellationToken);
            using var sd = LoadGenerator();
            using var augmenter = new DiffIIAugmenter(sd, AugmentationOptionsFor(strategy, shots, seed, split, concepts, method.Extra), folder);
            string stage = $"{method.Name} k{shots} seed{seed}";
            synthetic = augmenter.Run(Labeled(few, _work), Adapt(progress, stage), cancellationToken);
            failed = augmenter.Failures.Count;
        }
        double generationSeconds = clock.Elapsed.TotalSeconds;
        double? conceptFromNoise = concepts is null ? null : ConceptFromNoise(concepts, seed, progress, cancellationToken);

        var syntheticFeatures = synthetic.Count == 0 ? [] : Featurize(features, synthetic.Select(s => s.ImagePath).ToList(), $"featurise {method.Name} k{shots} seed{seed}", progress, cancellationToken);
        var accuracy = TrainAndTest(few, originalFeatures, synthetic, syntheticFeatures, testSets, testFeatures, (int)seed, method.IsOriginal);

        double? faithfulness = null, diversity = null;
        string? faithfulnessBy = null;
        if (synthetic.Count > 0)
        {
            diversity = Diversity(synthetic.Select(IntendedClass).ToList(), syntheticFeatures);
            if (_judge is not null) (faithfulness, faithfulnessBy) = (JudgeAgreement(_judge, synthetic.Select(s => s.ImagePath).ToList(), synthetic.Select(IntendedClass).ToList()), "judge");
            else if (reference is not null) (faithfulness, faithfulnessBy) = (reference.Agreement(synthetic.Select(IntendedClass).ToList(), syntheticFeatures), "reference");
        }
        else if (method.IsOriginal) diversity = Diversity(few.Select(i => i.ClassName).ToList(), originalFeatures);

        var result = new RunResult
        {
            Shots = shots, Seed = seed, Method = method.Name, Strategy = method.Strategy?.Name(), SplitRatio = split,
            SyntheticImages = synthetic.Count, FailedImages = failed, GenerationSeconds = Math.Round(generationSeconds, 2),
            Accuracy = accuracy, Faithfulness = faithfulness, FaithfulnessBy = faithfulnessBy, Diversity = diversity, ConceptFromNoise = conceptFromNoise,
            WorkFolder = method.IsOriginal ? null : Path.GetRelativePath(_work, folder),
        };
        AtomicFile.WriteAllText(resultPath, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        return result;
    }

    /// <summary>The class a synthetic image is meant to show: its label of largest weight (Diff-Mix's target class; everyone else's only label).</summary>
    internal static string IntendedClass(SyntheticImage s) => s.Labels.MaxBy(l => l.Weight)!.ClassName;

    /// <summary>The share of the pictures at <paramref name="paths"/> that <paramref name="judge"/> recognises as their <paramref name="intended"/> class.</summary>
    internal static double JudgeAgreement(TinyJudge judge, IReadOnlyList<string> paths, IReadOnlyList<string> intended)
    {
        using var scope = NewDisposeScope();
        var images = stack(paths.Select(path =>
        {
            using var bitmap = ImageCodec.Decode(File.ReadAllBytes(path), path, SceneRenderer.Size);
            return ImageCodec.ToTensor(bitmap, SceneRenderer.Size);
        }).ToArray());
        var predicted = judge.Predict(images);
        int agree = intended.Where((name, i) => FewShotWorld.Classes[(int)predicted[i]] == name).Count();
        return (double)agree / paths.Count;
    }

    /// <summary>
    /// Trains every classifier on the originals, with the synthetic rows in the replacement schedule (each pass, each
    /// original replaced with probability p by a synthetic image of its class), and tests it on both test sets.
    /// A Diff-Mix image enters as one weighted row per label, the rows sharing a synthetic group, so the schedule
    /// draws the image whole and the trainer sees its soft label (see <see cref="DiffII.MLNet.Data.ReplacementMixingDataView"/>).
    /// </summary>
    IReadOnlyList<AccuracyResult> TrainAndTest(IReadOnlyList<WorldImage> few, IReadOnlyList<float[]> originalFeatures,
        IReadOnlyList<SyntheticImage> synthetic, IReadOnlyList<float[]> syntheticFeatures,
        Dictionary<string, IReadOnlyList<WorldImage>> testSets, Dictionary<string, IReadOnlyList<float[]>> testFeatures, int seed, bool originalsOnly)
    {
        var ml = new MLContext(seed);
        var rows = new List<FeatureRow>();
        for (int i = 0; i < few.Count; i++)
            rows.Add(new FeatureRow { Label = few[i].ClassName, ImagePath = few[i].Path, Features = originalFeatures[i], IsSynthetic = false, SampleWeight = 1f });
        for (int i = 0; i < synthetic.Count; i++)
            foreach (var label in synthetic[i].Labels)
                rows.Add(new FeatureRow { Label = label.ClassName, ImagePath = synthetic[i].ImagePath, Features = syntheticFeatures[i], IsSynthetic = true, SampleWeight = label.Weight, SyntheticGroup = (uint)(i + 1) });
        var train = ml.Data.LoadFromEnumerable(rows, FeatureRow.Schema(ml));
        var tests = testSets.ToDictionary(p => p.Key, p => ml.Data.LoadFromEnumerable(
            p.Value.Select((image, i) => new FeatureRow { Label = image.ClassName, ImagePath = image.Path, Features = testFeatures[p.Key][i], IsSynthetic = false, SampleWeight = 1f }).ToList(),
            FeatureRow.Schema(ml)));
        var comparison = ClassifierComparison.Run(ml, ml.Data.Cache(train), tests.ToDictionary(p => p.Key, p => ml.Data.Cache(p.Value)), new ClassifierComparisonOptions
        {
            Trainers = options.Trainers.Select(t => TinyExperimentOptions.Trainer(t, seed, few.Count)).ToList(),
            Mixings = originalsOnly ? [] : [AugmentationMixing.Replacement(options.ReplacementProbability)],
            ImageColumn = nameof(FeatureRow.ImagePath),
            Seed = seed,
        });
        string mode = originalsOnly ? ClassifierComparison.OriginalsMode : AugmentationMixing.Replacement(options.ReplacementProbability).Name;
        return comparison.Rows.Where(r => r.Mode == mode)
            .Select(r => new AccuracyResult(TrainerLabel(r.Trainer), r.TestSet, r.MicroAccuracy, r.MacroAccuracy)).ToList();
    }

    internal static string TrainerLabel(string trainerName) => trainerName switch
    {
        "LbfgsMaximumEntropy" => "lbfgs",
        "SdcaMaximumEntropy" => "sdca",
        "LightGbm" => "lightgbm",
        "ResNet18FineTune" => "finetune",
        _ => trainerName,
    };

    /// <summary>
    /// Mean over classes of the mean pairwise cosine distance (1 − cos) between the class's feature vectors; null when
    /// no class has two members (one-shot originals), since a single picture has no pairwise distance.
    /// </summary>
    public static double? Diversity(IReadOnlyList<string> classes, IReadOnlyList<float[]> features)
    {
        var perClass = new List<double>();
        foreach (var group in classes.Select((c, i) => (c, i)).GroupBy(p => p.c))
        {
            var members = group.Select(p => features[p.i]).ToList();
            if (members.Count < 2) continue;
            double sum = 0;
            int pairs = 0;
            for (int a = 0; a < members.Count; a++)
                for (int b = a + 1; b < members.Count; b++)
                {
                    sum += 1 - Cosine(members[a], members[b]);
                    pairs++;
                }
            perClass.Add(sum / pairs);
        }
        return perClass.Count == 0 ? null : perClass.Average();
    }

    static double Cosine(float[] x, float[] y)
    {
        double dot = 0, nx = 0, ny = 0;
        for (int i = 0; i < x.Length; i++)
        {
            dot += (double)x[i] * y[i];
            nx += (double)x[i] * x[i];
            ny += (double)y[i] * y[i];
        }
        return nx == 0 || ny == 0 ? 0 : dot / Math.Sqrt(nx * ny);
    }

    static IReadOnlyList<float[]> Featurize(FeatureStore store, IReadOnlyList<string> paths, string stage, IProgress<ExperimentProgress>? progress, CancellationToken cancellationToken) =>
        store.Get(paths, progress is null ? null : new Sync<(int Done, int Total)>(p => progress.Report(new ExperimentProgress(stage, p.Done, p.Total))), cancellationToken);

    static IProgress<AugmentationProgress>? Adapt(IProgress<ExperimentProgress>? progress, string stage) =>
        progress is null ? null : new Sync<AugmentationProgress>(p => progress.Report(new ExperimentProgress($"{p.Stage} {stage}", p.Done, p.Total, p.Loss)));

    internal sealed class Sync<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    /// <summary>A row of the classifier's data: one image's file, its ResNet18 features and its label.</summary>
    internal sealed class FeatureRow
    {
        public string Label { get; set; } = "";
        /// <summary>The image file, for trainers that read images (the fine-tuning trainer).</summary>
        public string ImagePath { get; set; } = "";
        public float[] Features { get; set; } = [];
        public bool IsSynthetic { get; set; }
        public float SampleWeight { get; set; } = 1f;
        /// <summary>0 for originals; the rows of one synthetic image share a number.</summary>
        public uint SyntheticGroup { get; set; }

        public static SchemaDefinition Schema(MLContext ml)
        {
            var schema = SchemaDefinition.Create(typeof(FeatureRow));
            schema[nameof(Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, ImageFeaturizer.FeatureCount);
            return schema;
        }
    }
}
