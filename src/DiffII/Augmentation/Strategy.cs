namespace DiffII.Augmentation;

/// <summary>
/// How synthetic images are made. Diff-II and its ablations start from inversions or noise and denoise from pure
/// noise level; the baselines edit a real image with SDEdit (noise it to a strength, then denoise). All share the
/// same concept learning, sampler and manifest, so a benchmark compares them on equal terms.
/// </summary>
public enum Strategy
{
    /// <summary>Diff-II: random spherical interpolation of two inversions of a class + two-stage denoising.</summary>
    DiffII,
    /// <summary>Ablation: interpolation of inversions, plain prompt throughout (no suffix stage).</summary>
    InterpolationOnly,
    /// <summary>Ablation: Gaussian noise (no inversion), two-stage denoising with suffixes.</summary>
    TwoStageOnly,
    /// <summary>Ablation floor (Table 4, first row): Gaussian noise, plain learned prompt.</summary>
    RandomNoise,
    /// <summary>Real-Guidance (He et al.): class-name prompt, SDEdit strength 0.1, no concept learning.</summary>
    RealGuidance,
    /// <summary>DA-Fusion (Trabucco et al.): learned tokens only (no LoRA), SDEdit strength from {0.25, 0.5, 0.75, 1.0}.</summary>
    DAFusion,
    /// <summary>Diff-AUG (Wang et al.): tokens + LoRA, same-class SDEdit at strength 1.0.</summary>
    DiffAug,
    /// <summary>Diff-Mix (Wang et al.): tokens + LoRA, another class's prompt, strength from {0.5, 0.7, 0.9}, soft labels.</summary>
    DiffMix,
}

public static class StrategyInfo
{
    /// <summary>Whether the strategy needs learned concept tokens.</summary>
    public static bool NeedsTokens(this Strategy s) => s != Strategy.RealGuidance;

    /// <summary>Whether the strategy needs LoRA on the U-Net (DA-Fusion learns tokens only).</summary>
    public static bool NeedsLora(this Strategy s) => s is not (Strategy.RealGuidance or Strategy.DAFusion);

    /// <summary>Whether the strategy needs the inversion pool.</summary>
    public static bool NeedsInversions(this Strategy s) => s is Strategy.DiffII or Strategy.InterpolationOnly;

    /// <summary>Whether the strategy uses suffixes in a first denoising stage.</summary>
    public static bool UsesSuffixes(this Strategy s) => s is Strategy.DiffII or Strategy.TwoStageOnly;

    /// <summary>Whether the strategy edits a real image with SDEdit.</summary>
    public static bool IsImageEditing(this Strategy s) => s is Strategy.RealGuidance or Strategy.DAFusion or Strategy.DiffAug or Strategy.DiffMix;

    /// <summary>The SDEdit strengths a baseline draws from (paper App. A.3, after Diff-Mix).</summary>
    public static IReadOnlyList<double> Strengths(this Strategy s) => s switch
    {
        Strategy.RealGuidance => [0.1],
        Strategy.DAFusion => [0.25, 0.5, 0.75, 1.0],
        Strategy.DiffAug => [1.0],
        Strategy.DiffMix => [0.5, 0.7, 0.9],
        _ => [],
    };

    /// <summary>Parses names such as "diff-ii", "DiffII", "da-fusion", "interpolation-only" (case and dashes ignored).</summary>
    public static Strategy Parse(string text)
    {
        string key = new string(text.Where(char.IsLetterOrDigit).ToArray());
        foreach (var s in Enum.GetValues<Strategy>())
            if (string.Equals(s.ToString(), key, StringComparison.OrdinalIgnoreCase)) return s;
        throw new ArgumentException(
            $"Unknown strategy '{text}'. Choose one of: {string.Join(", ", Enum.GetValues<Strategy>().Select(Name))}.", nameof(text));
    }

    /// <summary>The kebab-case name used on the command line and in manifests.</summary>
    public static string Name(this Strategy s) => s switch
    {
        Strategy.DiffII => "diff-ii",
        Strategy.InterpolationOnly => "interpolation-only",
        Strategy.TwoStageOnly => "two-stage-only",
        Strategy.RandomNoise => "random-noise",
        Strategy.RealGuidance => "real-guidance",
        Strategy.DAFusion => "da-fusion",
        Strategy.DiffAug => "diff-aug",
        Strategy.DiffMix => "diff-mix",
        _ => throw new ArgumentOutOfRangeException(nameof(s)),
    };
}
