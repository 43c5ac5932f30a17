using System.Globalization;
using DiffII.Concepts;
using DiffII.Inversion;

namespace DiffII.Augmentation;

/// <summary>
/// The ranges of every numeric option of a run, checked before any work (no image is decoded, no step learned): a
/// NaN guidance makes no image, an expansion of 1e9 plans billions of samples, and 5000 sampling steps on a model
/// trained with 1000 timesteps fail only after concept learning. Messages name the option both as the library's
/// property and as the diffii CLI's flag, and print numbers the same in every culture.
/// </summary>
public static class OptionLimits
{
    public const double MaxExpansion = 1000;
    public const int MaxTargetCount = 1_000_000;
    /// <summary>The most synthetic samples one run may plan (each is a PNG and a manifest line).</summary>
    public const int MaxPlannedSamples = 1_000_000;
    public const int MaxLearnSteps = 1_000_000;
    public const int MaxLoraRank = 1024;
    public const int MaxBatch = 1024;
    public const double MaxGuidance = 100;
    public const double MaxLearningRate = 1;

    /// <summary>Every problem of <paramref name="options"/>, one sentence each (empty when there is none).</summary>
    /// <param name="numTrainTimesteps">The model's training timesteps (its scheduler's num_train_timesteps), which bound the step counts; null: not checked.</param>
    public static IReadOnlyList<string> Problems(AugmentationOptions options, int? numTrainTimesteps = null)
    {
        var problems = new List<string>();
        switch (options.Budget)
        {
            case SampleBudget.Expansion e:
                Real(problems, "the expansion rate", "Budget.Expansion.Rate, --expansion", e.Rate, 0, MaxExpansion, lowOpen: true);
                break;
            case SampleBudget.TargetCount t:
                Whole(problems, "the target count", "Budget.TargetCount.Count, --target-count", t.Count, 1, MaxTargetCount);
                break;
        }
        Real(problems, "the split ratio", "SplitRatio, --split", options.SplitRatio, 0, 1);
        int steps = numTrainTimesteps ?? 1000;
        string bound = numTrainTimesteps is null ? "" : $" (the model was trained with {numTrainTimesteps} timesteps)";
        Whole(problems, "the sampling steps", "Generation.Steps, --sample-steps", options.Generation.Steps, 1, steps, bound);
        Real(problems, "the guidance scale", "Generation.GuidanceScale, --guidance", options.Generation.GuidanceScale, 0, MaxGuidance);
        Whole(problems, "the generation batch", "Generation.BatchSize", options.Generation.BatchSize, 1, MaxBatch);
        Whole(problems, "the inversion steps", "Inversion.Steps, --inversion-steps", options.Inversion.Steps, 1, steps, bound);
        Real(problems, "the inversion guidance", "Inversion.GuidanceScale", options.Inversion.GuidanceScale, 0, MaxGuidance);
        Whole(problems, "the inversion batch", "Inversion.BatchSize", options.Inversion.BatchSize, 1, MaxBatch);
        if (options.Concepts is ConceptOptions c)
        {
            if (c.Metaclass.Length > 0 && c.Metaclass != options.Metaclass)
                problems.Add($"Concepts.Metaclass ('{c.Metaclass}') differs from the run's Metaclass ('{options.Metaclass}'); leave Concepts.Metaclass empty, the run's is used.");
            Whole(problems, "the concept-learning steps", "Concepts.Steps, --learn-steps", c.Steps, 1, MaxLearnSteps);
            Whole(problems, "the LoRA rank", "Concepts.LoraRank, --lora-rank", c.LoraRank, 1, MaxLoraRank);
            Whole(problems, "the concept-learning batch", "Concepts.BatchSize, --batch", c.BatchSize, 1, MaxBatch);
            Whole(problems, "the checkpoint interval", "Concepts.CheckpointEvery", c.CheckpointEvery, 1, int.MaxValue);
            Real(problems, "the LoRA learning rate", "Concepts.LoraLearningRate", c.LoraLearningRate, 0, MaxLearningRate, lowOpen: true);
            Real(problems, "the token learning rate", "Concepts.TokenLearningRate", c.TokenLearningRate, 0, MaxLearningRate, lowOpen: true);
            Real(problems, "the weight decay", "Concepts.WeightDecay", c.WeightDecay, 0, 1);
            Real(problems, "the gradient-norm limit", "Concepts.MaxGradNorm", c.MaxGradNorm, 0, 1e6, lowOpen: true);
        }
        if (options.Resolution is int r) Whole(problems, "the resolution", "Resolution", r, 8, 8192);
        return problems;
    }

    /// <summary>
    /// Refuses options that cannot generate: a suffix-using strategy with a split ratio above 0 and no suffix. Checked
    /// where generation is sure to follow (the augmenter's Run, the ML.NET options) and not by <see cref="Check"/>,
    /// since learning and inversion alone (<c>diffii learn</c>, <c>invert</c>) need no suffix.
    /// </summary>
    /// <exception cref="ArgumentException">The split ratio needs suffixes and there are none.</exception>
    public static void CheckSuffixes(AugmentationOptions options)
    {
        if (options.Strategy.UsesSuffixes() && options.SplitRatio > 0 && options.Suffixes.Count == 0)
            throw new ArgumentException(Format($"{options.Strategy.Name()} with the split ratio {options.SplitRatio} (SplitRatio, --split) needs at least one prompt suffix (Suffixes, --suffix-preset, --suffix-file, or generated ones); use the split ratio 0 for none."), nameof(options));
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> with every problem of <paramref name="options"/>.</summary>
    public static void Check(AugmentationOptions options, int? numTrainTimesteps = null)
    {
        var problems = Problems(options, numTrainTimesteps);
        if (problems.Count > 0) throw new ArgumentOutOfRangeException(nameof(options), string.Join(" ", problems));
    }

    /// <summary>How many samples <paramref name="budget"/> plans for classes of these sizes (without planning them).</summary>
    public static long PlannedSamples(SampleBudget budget, IEnumerable<int> classSizes) => classSizes.Sum(n => (long)budget.For(n));

    /// <summary>Refuses a plan of more than <see cref="MaxPlannedSamples"/> samples before a single one is planned.</summary>
    public static void CheckPlanSize(SampleBudget budget, IEnumerable<int> classSizes)
    {
        long planned = PlannedSamples(budget, classSizes);
        if (planned > MaxPlannedSamples)
            throw new ArgumentOutOfRangeException(nameof(budget), Format($"This budget plans {planned:N0} synthetic images; the limit of one run is {MaxPlannedSamples:N0}. Lower the expansion rate (--expansion) or the target count (--target-count), or split the classes over several runs."));
    }

    static void Real(List<string> problems, string what, string names, double value, double min, double max, bool lowOpen = false)
    {
        if (!double.IsFinite(value))
            problems.Add(Format($"{Capital(what)} ({names}) must be a finite number; got {value}."));
        else if ((lowOpen ? value <= min : value < min) || value > max)
            problems.Add(Format($"{Capital(what)} ({names}) must be {(lowOpen ? "above" : "at least")} {min} and at most {max}; got {value}."));
    }

    static void Whole(List<string> problems, string what, string names, long value, long min, long max, string why = "")
    {
        if (value < min || value > max)
            problems.Add(Format($"{Capital(what)} ({names}) must be between {min} and {max}{why}; got {value}."));
    }

    static string Capital(string text) => char.ToUpperInvariant(text[0]) + text[1..];

    /// <summary>Messages print numbers as the options are written (1.5, not 1,5), whatever the culture.</summary>
    static string Format(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
