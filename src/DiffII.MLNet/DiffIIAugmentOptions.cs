using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Diffusion.Pipelines;
using DiffII.Inversion;

namespace DiffII.MLNet;

/// <summary>
/// Settings of <see cref="DiffIIAugmentEstimator"/>: which columns hold the label and the image, which diffusion model
/// generates, and the Diff-II method's own options (see <see cref="AugmentationOptions"/>).
/// </summary>
public sealed record DiffIIAugmentOptions
{
    /// <summary>
    /// The class label: String, a key (<c>MapValueToKey</c>) or an integer type. Rows with a missing key are left out of
    /// augmentation and counted in <see cref="DiffIIAugmentTransformer.SkippedRows"/>.
    /// </summary>
    public string LabelColumnName { get; init; } = "Label";

    /// <summary>The image: an <c>MLImage</c> (after <c>LoadImages</c>, unsized), a path (String) or encoded bytes (<c>LoadRawImageBytes</c>).</summary>
    public string ImageColumnName { get; init; } = "Image";

    /// <summary>The folder relative paths of a path column resolve against (absolute paths ignore it); the working directory when null.</summary>
    public string? ImageFolder { get; init; }

    /// <summary>
    /// A diffusers Stable Diffusion folder (or single-file checkpoint) loaded for <c>Fit</c> and released after it. Set
    /// this, or give the estimator an already loaded model (its <c>generator</c> parameter).
    /// </summary>
    public string? GeneratorPath { get; init; }

    /// <summary>The dataset's theme word(s) in the prompt: "bird", "aircraft", "flower".</summary>
    public required string Metaclass { get; init; }

    public Strategy Strategy { get; init; } = Strategy.DiffII;

    /// <summary>Synthetic images per class = rate × its real images (the paper: 5). Default 5 when <see cref="TargetCount"/> is not set.</summary>
    public double? ExpansionRate { get; init; }

    /// <summary>Long-tail mode: lift every class to this many images (classes already there get none). Excludes <see cref="ExpansionRate"/>.</summary>
    public int? TargetCount { get; init; }

    /// <summary>Fraction of denoising steps (the high-noise ones) that use a suffixed prompt (the paper: 0.3; 0 for none).</summary>
    public double SplitRatio { get; init; } = 0.3;

    /// <summary>Prompt suffixes for the first stage; required when <see cref="SplitRatio"/> &gt; 0 (see <c>DiffII.Suffixes.SuffixPresets</c>).</summary>
    public IReadOnlyList<string> Suffixes { get; init; } = [];

    public long Seed { get; init; }

    /// <summary>Concept learning (step 1); leave its metaclass empty (the one above is used); its seed defaults to the one above.</summary>
    public ConceptOptions? Concepts { get; init; }

    /// <summary>DDIM inversion (step 2a).</summary>
    public InversionOptions Inversion { get; init; } = new();

    /// <summary>Sampling (step 3).</summary>
    public GenerationOptions Generation { get; init; } = new();

    /// <summary>Pixel size of the generated images; the model's native size by default.</summary>
    public int? Resolution { get; init; }

    /// <summary>The device <see cref="GeneratorPath"/> is loaded on: "cpu" (default), "cuda", "cuda:1" ... (ignored for a loaded generator).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// The work folder: learned concepts, inversion pools, the synthetic PNGs, their manifest and the fitted rows
    /// (<c>diffii-mlnet.json</c>). A rerun with the same data and options reuses everything in it. When null, a folder
    /// under the system temp folder named by a hash of the images, the model and the options
    /// (<c>{temp}/diffii-mlnet/{hash}</c>), so refitting on the same data is a cache hit and other data never
    /// collides. The synthetic rows are read from here whenever the data is read, so keep it while they are in use.
    /// </summary>
    public string? CacheFolder { get; init; }

    /// <summary>The added Boolean column marking synthetic rows.</summary>
    public string IsSyntheticColumnName { get; init; } = "IsSynthetic";

    /// <summary>The added Single example-weight column: 1 for real rows and hard-labelled synthetic rows, the label's weight for Diff-Mix rows.</summary>
    public string ExampleWeightColumnName { get; init; } = "SampleWeight";

    /// <summary>
    /// The added UInt32 column numbering the synthetic images: 0 for real rows, 1, 2, ... per synthetic image, the same
    /// number on every row of one image (a Diff-Mix image's two weighted rows), so replacement mixing draws them together.
    /// </summary>
    public string SyntheticGroupColumnName { get; init; } = "SyntheticGroup";

    internal string[] AddedColumnNames => [IsSyntheticColumnName, ExampleWeightColumnName, SyntheticGroupColumnName];

    internal SampleBudget Budget => (ExpansionRate, TargetCount) switch
    {
        (not null, not null) => throw new ArgumentException($"Set ExpansionRate ({ExpansionRate}) or TargetCount ({TargetCount}), not both."),
        (null, int target) => new SampleBudget.TargetCount(target),
        (double rate, null) => new SampleBudget.Expansion(rate),
        _ => new SampleBudget.Expansion(5),
    };

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Metaclass)) throw new ArgumentException("DiffIIAugment needs a metaclass (the dataset's theme word, e.g. \"bird\").");
        if (GeneratorPath is not null && !Directory.Exists(GeneratorPath) && !File.Exists(GeneratorPath))
            throw new DirectoryNotFoundException($"The generator {Path.GetFullPath(GeneratorPath)} does not exist (GeneratorPath: a diffusers folder or a checkpoint file).");
        if (ExpansionRate is < 0 || ExpansionRate is double r && double.IsNaN(r))
            throw new ArgumentOutOfRangeException(nameof(ExpansionRate), $"The expansion rate must be at least 0; got {ExpansionRate}.");
        if (TargetCount is < 0) throw new ArgumentOutOfRangeException(nameof(TargetCount), $"The target count must be at least 0; got {TargetCount}.");
        _ = Budget;
        foreach (var (name, value) in new[] { (nameof(LabelColumnName), LabelColumnName), (nameof(ImageColumnName), ImageColumnName),
                     (nameof(IsSyntheticColumnName), IsSyntheticColumnName), (nameof(ExampleWeightColumnName), ExampleWeightColumnName),
                     (nameof(SyntheticGroupColumnName), SyntheticGroupColumnName) })
            if (string.IsNullOrEmpty(value)) throw new ArgumentException($"{name} is empty.");
        var names = new[] { LabelColumnName, ImageColumnName, IsSyntheticColumnName, ExampleWeightColumnName, SyntheticGroupColumnName };
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
            throw new ArgumentException($"The label, image, IsSynthetic, weight and synthetic group columns need five different names; got {string.Join(", ", names.Select(n => $"'{n}'"))}.");
        // The method's own limits (ranges, finiteness, suffixes for the split ratio), at construction rather than at Fit.
        var augmentation = ToAugmentationOptions();
        OptionLimits.Check(augmentation);
        OptionLimits.CheckSuffixes(augmentation);
    }

    internal AugmentationOptions ToAugmentationOptions() => new()
    {
        Metaclass = Metaclass,
        Strategy = Strategy,
        Budget = Budget,
        SplitRatio = SplitRatio,
        Suffixes = Suffixes,
        Concepts = Concepts,
        Inversion = Inversion,
        Generation = Generation,
        Resolution = Resolution,
        Seed = Seed,
    };
}
