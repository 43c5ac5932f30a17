using DiffII.Augmentation;
using DiffII.Inversion;
using DiffII.Experiments.Classification;
using DiffII.TinyWorld;
using static TorchSharp.torch;

namespace DiffII.Experiments.Tiny;

/// <summary>
/// One arm of the experiment: no augmentation (<see cref="Strategy"/> null), or a strategy (Diff-II, an ablation, a
/// baseline) at a split ratio (null: the paper's choice for the shot count, see <see cref="TinyExperimentOptions.DefaultSplitRatio"/>).
/// </summary>
/// <param name="Extra">Extra inversions for the pool (interpolating strategies); null: the library's default (mirror single-image classes).</param>
public sealed record ExperimentMethod(string Name, Strategy? Strategy, double? SplitRatio = null, ExtraInversions? Extra = null)
{
    public static ExperimentMethod Original { get; } = new("original", null);
    public static ExperimentMethod Of(Strategy strategy, double? splitRatio = null) =>
        new(splitRatio is null ? strategy.Name() : $"{strategy.Name()} s={splitRatio.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)}", strategy, splitRatio);
    public bool IsOriginal => Strategy is null;
}

/// <summary>
/// The paper's Tables 1 and 3 in miniature on the tiny world: few-shot sets in a narrow context, every method
/// generating from the same concepts, classifiers on ResNet18 features trained with the replacement schedule,
/// tested in the training context and in shifted contexts, over several seeds.
/// </summary>
public sealed record TinyExperimentOptions
{
    /// <summary>Rendered data, per-run work folders (concepts, pools, images), feature store and results; a rerun resumes.</summary>
    public required string WorkFolder { get; init; }
    /// <summary>The generator (diffusers folder or single file); the embedded tiny model in the CLI.</summary>
    public required string ModelPath { get; init; }
    /// <summary>Where report.md, results.csv, plots and grids go (default: WorkFolder/report).</summary>
    public string? ReportFolder { get; init; }
    public string Preset { get; init; } = "custom";

    public IReadOnlyList<int> Shots { get; init; } = [5];
    public IReadOnlyList<long> Seeds { get; init; } = [1];
    public IReadOnlyList<ExperimentMethod> Methods { get; init; } = [ExperimentMethod.Original, ExperimentMethod.Of(Strategy.DiffII)];
    /// <summary>Extra Diff-II arms at these split ratios, run at the first shot count (the faithfulness/diversity trade-off of the paper's Fig. 6).</summary>
    public IReadOnlyList<double> SplitSweep { get; init; } = [];

    public double ExpansionRate { get; init; } = 5;
    public double ReplacementProbability { get; init; } = 0.5;
    /// <summary>Test items per class; the in-distribution and the shifted test sets show the same items.</summary>
    public int TestPerClass { get; init; } = 30;
    /// <summary>lbfgs, sdca, lightgbm, finetune (the ResNet-18 fine-tuning trainer, on the images themselves).</summary>
    public IReadOnlyList<string> Trainers { get; init; } = ["lbfgs"];
    /// <summary>Real images per class (every context) for the reference classifier; 0 skips it.</summary>
    public int ReferencePerClass { get; init; }
    /// <summary>
    /// The judge (a <c>train-judge</c> folder, e.g. models/tiny-judge) that scores faithfulness: the share of synthetic
    /// images it recognises as their intended class. Null: the reference classifier scores it, when there is one.
    /// </summary>
    public string? JudgePath { get; init; }
    /// <summary>
    /// Also run one-shot sets (every class has a single picture, the paper's stated limitation) with the ways of giving
    /// such a class a second inversion (<see cref="SingleImageMethods"/>).
    /// </summary>
    public bool SingleImageStudy { get; init; }
    /// <summary>
    /// Samples from noise per class for the concept gate (<c>concept_from_noise</c>): how often the judge recognises an
    /// image prompted with a learned concept alone as its class. 0 leaves the gate out; it needs a judge.
    /// </summary>
    public int ConceptSamplesPerClass { get; init; } = 20;
    /// <summary>
    /// A gates file (e.g. models/tiny-sd/gates.json) to merge this run's gates into: the first shot count's means of the
    /// first trainer (<see cref="TinyExperimentGates"/>). Null: none is written.
    /// </summary>
    public string? GatesPath { get; init; }
    /// <summary>Classes shown in the interpolation strips (Fig. 4 of the paper); none when empty.</summary>
    public int InterpolationStrips { get; init; } = 2;

    // Concept learning, inversion and sampling: the paper's settings where a 2-core CPU allows them.
    public int LearnSteps { get; init; } = 600;
    public int LearnBatch { get; init; } = 16;
    public int LoraRank { get; init; } = 10;
    public double LoraLearningRate { get; init; } = 1e-4;
    public double TokenLearningRate { get; init; } = 1e-3;
    public int InversionSteps { get; init; } = 25;
    public int SampleSteps { get; init; } = 25;
    public double GuidanceScale { get; init; } = 7.5;
    public int GenerationBatch { get; init; } = 25;

    /// <summary>The first-stage suffixes; by default the tiny world's contexts, written like the paper's suffix lists.</summary>
    public IReadOnlyList<string> Suffixes { get; init; } = TinyWorldSuffixes;

    /// <summary>Fashion-MNIST folder; null: the shipped subset for the quick preset, Debian's package otherwise.</summary>
    public string? FashionMnistFolder { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>The generator's weights dtype; float32 on CPU, float16 or bfloat16 on GPUs.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>The paper's split ratios (App. A.3): 0.3 for 5-shot, 0.1 for 10-shot.</summary>
    public static double DefaultSplitRatio(int shots) => shots <= 5 ? 0.3 : 0.1;

    /// <summary>
    /// Suffixes describing the contexts a clothing item can be photographed in, as an LLM would summarise them from
    /// captions (the paper's App. A.5.1 lists are of this kind: generic to the metaclass, not to the test set). They
    /// name the patterns and colours the generator knows, without singling out the shifted test contexts. The CLI
    /// offers the same list as <c>--suffix-preset tiny-world</c>.
    /// </summary>
    public static IReadOnlyList<string> TinyWorldSuffixes => DiffII.Suffixes.SuffixPresets.Get("tiny-world").Suffixes;

    public static IReadOnlyList<ExperimentMethod> AllMethods { get; } =
    [
        ExperimentMethod.Original,
        ExperimentMethod.Of(Strategy.RealGuidance),
        ExperimentMethod.Of(Strategy.DAFusion),
        ExperimentMethod.Of(Strategy.DiffAug),
        ExperimentMethod.Of(Strategy.DiffMix),
        ExperimentMethod.Of(Strategy.InterpolationOnly),
        ExperimentMethod.Of(Strategy.TwoStageOnly),
        ExperimentMethod.Of(Strategy.DiffII),
    ];

    /// <summary>
    /// The one-shot arms: no augmentation; two-stage denoising from noise (what is left of Diff-II without a pair);
    /// Diff-II pairing the picture's inversion with its mirror's (the library's default); and with two light centre
    /// crops as well.
    /// </summary>
    public static IReadOnlyList<ExperimentMethod> SingleImageMethods { get; } =
    [
        ExperimentMethod.Original,
        ExperimentMethod.Of(Strategy.TwoStageOnly),
        new("diff-ii mirror", Strategy.DiffII, null, ExtraInversions.MirrorSingleImageClasses),
        new("diff-ii mirror+crops", Strategy.DiffII, null, ExtraInversions.MirrorAndCropsSingleImageClasses),
    ];

    /// <summary>The README's first command: 5-shot, original vs Diff-II, one seed, the shipped data subset.</summary>
    public static TinyExperimentOptions Quick(string workFolder, string modelPath) => new()
    {
        WorkFolder = workFolder, ModelPath = modelPath, Preset = "quick",
        Shots = [5], Seeds = [1], TestPerClass = 30, Trainers = ["lbfgs"], InterpolationStrips = 2,
    };

    /// <summary>The full miniature: 5- and 10-shot, every method, three seeds, a split-ratio sweep, two trainers, faithfulness and diversity.</summary>
    public static TinyExperimentOptions Full(string workFolder, string modelPath) => new()
    {
        WorkFolder = workFolder, ModelPath = modelPath, Preset = "full",
        Shots = [5, 10], Seeds = [1, 2, 3], Methods = AllMethods, SplitSweep = [0.1, 0.5, 1.0],
        TestPerClass = 100, Trainers = ["lbfgs", "sdca"], ReferencePerClass = 200, InterpolationStrips = 3, SingleImageStudy = true,
    };

    /// <summary>The names <see cref="Trainers"/> accepts.</summary>
    public static readonly IReadOnlyList<string> TrainerNames = ["lbfgs", "sdca", "lightgbm", "finetune"];

    /// <summary>
    /// Optimizer steps of the fine-tuning trainer, whatever the shot count: 5 shots make 50 originals, 4 batches of 16
    /// per epoch, so a fixed epoch count would give 5-shot a tenth of the training 50-shot gets. Fixed in advance
    /// (not chosen on the test sets): about 3 200 images seen, a few minutes at 64 px on two cores.
    /// </summary>
    public const int FineTuneSteps = 200;
    public const int FineTuneBatch = 16;

    /// <param name="originals">The originals per training run, which sets the fine-tuning trainer's epochs.</param>
    internal static ClassifierTrainer Trainer(string name, int seed, int originals = 1) => name.ToLowerInvariant() switch
    {
        "lbfgs" => ClassifierTrainer.LbfgsMaximumEntropy(),
        "sdca" => ClassifierTrainer.SdcaMaximumEntropy(),
        "lightgbm" => ClassifierTrainer.LightGbm(minimumExamplesPerLeaf: 2, seed: seed),
        "finetune" => ClassifierTrainer.ResNet18FineTune(seed, imageSize: 64, batchSize: FineTuneBatch,
            epochs: Math.Max(1, (int)Math.Ceiling((double)FineTuneSteps / Math.Ceiling((double)originals / FineTuneBatch)))),
        _ => throw new ArgumentException($"Unknown trainer '{name}'; use lbfgs, sdca, lightgbm or finetune."),
    };
}
