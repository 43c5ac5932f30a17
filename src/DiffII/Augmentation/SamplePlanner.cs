using DiffII.Diffusion.Runtime;
namespace DiffII.Augmentation;

/// <summary>A class of the training set: its name and the ids of its images, in a stable order.</summary>
public sealed record ClassImages(string Name, IReadOnlyList<string> ImageIds);

/// <summary>A label of a synthetic image with its weight (1 for hard labels; Diff-Mix splits 1 over two classes).</summary>
public sealed record WeightedLabel(int ClassIndex, float Weight);

/// <summary>
/// Everything needed to make one synthetic image, decided up front so a run can be resumed, split across machines,
/// or audited: the class and sources, the phase, the suffix, the SDEdit strength, the labels and the seed.
/// </summary>
public sealed record PlannedSample(
    string Id,
    Strategy Strategy,
    int ClassIndex,
    IReadOnlyList<string> Sources,
    double? Phi,
    string? Suffix,
    double SplitRatio,
    double? Strength,
    int PromptClassIndex,
    IReadOnlyList<WeightedLabel> Labels,
    long Seed);

/// <summary>How many synthetic images each class gets.</summary>
public abstract record SampleBudget
{
    /// <summary>expansion × (number of real images of the class), rounded: the paper uses 5.</summary>
    public sealed record Expansion(double Rate) : SampleBudget;
    /// <summary>Long-tail mode: enough to lift each class to <paramref name="Count"/> images (none for classes already there).</summary>
    public sealed record TargetCount(int Count) : SampleBudget;

    public int For(int realImages) => this switch
    {
        Expansion e => (int)Math.Round(e.Rate * realImages, MidpointRounding.AwayFromZero),
        TargetCount t => Math.Max(0, t.Count - realImages),
        _ => throw new InvalidOperationException(),
    };
}

/// <summary>Options that shape the plan (not the sampler's numerics).</summary>
public sealed record PlanOptions
{
    public Strategy Strategy { get; init; } = Strategy.DiffII;
    public SampleBudget Budget { get; init; } = new SampleBudget.Expansion(5);
    /// <summary>Fraction s of denoising steps (the high-noise ones) that use the suffixed prompt.</summary>
    public double SplitRatio { get; init; } = 0.3;
    public IReadOnlyList<string> Suffixes { get; init; } = [];
    /// <summary>Diff-Mix's soft-label exponent γ: labels (1 − s^γ) for the source class, s^γ for the prompt's class.</summary>
    public double DiffMixGamma { get; init; } = 0.5;
    public long Seed { get; init; }
}

/// <summary>Decides every synthetic sample of a run, deterministically from the seed.</summary>
/// <remarks>
/// Each class draws from its own random stream (seeded by run seed and class index), so adding or removing a class
/// does not change the plan of the others, and sample k of a class is the same however many samples follow it.
/// </remarks>
public static class SamplePlanner
{
    /// <param name="classes">The training classes in label order.</param>
    /// <param name="options">Strategy, budget, split ratio, suffixes and seed.</param>
    /// <param name="inversionPools">For interpolating strategies: per class, the ids of its inversions (at least two).</param>
    /// <param name="cancellationToken">Checked every 4 096 samples: a plan can hold up to a million of them.</param>
    public static IReadOnlyList<PlannedSample> Plan(IReadOnlyList<ClassImages> classes, PlanOptions options,
        IReadOnlyList<IReadOnlyList<string>>? inversionPools = null, CancellationToken cancellationToken = default)
    {
        Validate(classes, options, inversionPools);
        var samples = new List<PlannedSample>();
        var strengths = options.Strategy.Strengths();
        for (int c = 0; c < classes.Count; c++)
        {
            var random = new Random(StableSeed.Of(options.Seed, c));
            int count = options.Budget.For(classes[c].ImageIds.Count);
            for (int k = 0; k < count; k++)
            {
                if ((samples.Count & 4095) == 0) cancellationToken.ThrowIfCancellationRequested();
                // Draw the same numbers for every strategy so strategies differ only where they must.
                int first = random.Next();
                int second = random.Next();
                double phi = random.NextDouble() * 2 * Math.PI;
                int suffixPick = random.Next();
                int strengthPick = random.Next();
                int otherClassPick = random.Next();
                long seed = StableSeed.Of(options.Seed, c, k);

                IReadOnlyList<string> sources;
                double? phase = null;
                if (options.Strategy.NeedsInversions())
                {
                    var pool = inversionPools![c];
                    int i = first % pool.Count;
                    int j = second % (pool.Count - 1);
                    if (j >= i) j++; // two distinct members
                    sources = [pool[i], pool[j]];
                    phase = phi;
                }
                else if (options.Strategy.IsImageEditing())
                    sources = [classes[c].ImageIds[first % classes[c].ImageIds.Count]];
                else
                    sources = [];

                string? suffix = options.Strategy.UsesSuffixes() && options.SplitRatio > 0
                    ? options.Suffixes[suffixPick % options.Suffixes.Count]
                    : null;
                double split = suffix is null ? 0 : options.SplitRatio;
                double? strength = strengths.Count > 0 ? strengths[strengthPick % strengths.Count] : null;

                int promptClass = c;
                IReadOnlyList<WeightedLabel> labels = [new WeightedLabel(c, 1f)];
                if (options.Strategy == Strategy.DiffMix)
                {
                    promptClass = otherClassPick % (classes.Count - 1);
                    if (promptClass >= c) promptClass++;
                    float toPrompt = (float)Math.Pow(strength!.Value, options.DiffMixGamma);
                    labels = [new WeightedLabel(c, 1f - toPrompt), new WeightedLabel(promptClass, toPrompt)];
                }

                samples.Add(new PlannedSample(
                    $"{options.Strategy.Name()}-c{c:D4}-{k:D5}", options.Strategy, c, sources, phase, suffix, split, strength,
                    promptClass, labels, seed));
            }
        }
        return samples;
    }

    /// <summary>
    /// Fixed batches of a plan: consecutive samples with the same SDEdit strength, at most <paramref name="size"/> each,
    /// so a resumed run recomputes the very same batches (and so the very same images).
    /// </summary>
    public static IEnumerable<List<PlannedSample>> Batches(IReadOnlyList<PlannedSample> plan, int size)
    {
        foreach (var group in plan.GroupBy(p => p.Strength))
            foreach (var chunk in group.Chunk(Math.Max(1, size)))
                yield return chunk.ToList();
    }

    static void Validate(IReadOnlyList<ClassImages> classes, PlanOptions options, IReadOnlyList<IReadOnlyList<string>>? pools)
    {
        if (classes.Count == 0) throw new ArgumentException("There are no classes to augment.");
        var empty = classes.FirstOrDefault(c => c.ImageIds.Count == 0);
        if (empty is not null) throw new ArgumentException($"Class '{empty.Name}' has no images; every class needs at least one.");
        if (options.SplitRatio is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), $"The split ratio must be in [0, 1]; got {options.SplitRatio}.");
        if (options.Strategy.UsesSuffixes() && options.SplitRatio > 0 && options.Suffixes.Count == 0)
            throw new ArgumentException($"{options.Strategy.Name()} with split ratio {options.SplitRatio} needs at least one suffix (a preset, a file, or generated ones); use split ratio 0 for none.");
        if (options.Strategy == Strategy.DiffMix && classes.Count < 2)
            throw new ArgumentException("Diff-Mix translates images towards other classes; it needs at least two classes.");
        if (options.Strategy.NeedsInversions())
        {
            if (pools is null || pools.Count != classes.Count)
                throw new ArgumentException($"{options.Strategy.Name()} needs one inversion pool per class.");
            for (int c = 0; c < classes.Count; c++)
                if (pools[c].Count < 2)
                    throw new ArgumentException($"Class '{classes[c].Name}' has {pools[c].Count} inversion(s); interpolation needs two (single-image classes get a mirrored inversion).");
        }
    }
}
