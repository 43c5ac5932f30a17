using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Diffusion.Pipelines;
using DiffII.Imaging;
using DiffII.Inversion;
using DiffII.Storage;
using static TorchSharp.torch;

namespace DiffII.Cli.Commands;

/// <summary>Every setting of one augmentation run, defaults applied.</summary>
public sealed record ResolvedRun(
    string Work, ImageSet Images, string ModelPath, string? Tokenizer, string Metaclass, Strategy Strategy, long Seed,
    int LearnSteps, int LoraRank, int Batch, int InversionSteps, SampleBudget Budget, double Split, int SampleSteps, double Guidance)
{
    public const string DefaultMetaclass = "object";

    public static ResolvedRun From(RunSettings s, string work, ImageSet images, string modelPath) => new(
        work, images, modelPath, s.Tokenizer, s.Metaclass ?? DefaultMetaclass,
        s.Strategy is null ? Strategy.DiffII : StrategyInfo.Parse(s.Strategy), s.Seed ?? 0,
        s.LearnSteps ?? 1000, s.LoraRank ?? 10, s.Batch ?? 8, s.InversionSteps ?? 25,
        s.TargetCount is int target ? new SampleBudget.TargetCount(target) : new SampleBudget.Expansion(s.Expansion ?? 5),
        s.Split ?? 0.3, s.SampleSteps ?? 25, s.Guidance ?? 7.5);

    /// <summary>The same run for another strategy in another folder (experiment baselines).</summary>
    public ResolvedRun For(Strategy strategy, string work, ImageSet images) => this with { Strategy = strategy, Work = work, Images = images };

    /// <summary>Whether the strategy draws suffixes for a first denoising stage.</summary>
    public bool NeedsSuffixes => Strategy.UsesSuffixes() && Split > 0;

    public ConceptOptions Concepts => new()
    {
        Metaclass = Metaclass,
        Steps = LearnSteps,
        LoraRank = LoraRank,
        BatchSize = Batch,
        Seed = Seed,
        TrainLora = Strategy.NeedsLora(),
    };

    public AugmentationOptions Options(IReadOnlyList<string> suffixes) => new()
    {
        Metaclass = Metaclass,
        Strategy = Strategy,
        Budget = Budget,
        SplitRatio = Split,
        Suffixes = suffixes,
        Concepts = Concepts with { TrainLora = true },
        Inversion = new InversionOptions { Steps = InversionSteps },
        Generation = new GenerationOptions { Steps = SampleSteps, GuidanceScale = Guidance },
        Seed = Seed,
    };

    /// <summary>The settings as saved in the work folder (resolved, so later commands and default changes agree).</summary>
    public RunSettings ToSettings(RunSettings merged, IReadOnlyList<string>? suffixes, string? suffixSource) => merged with
    {
        Model = ModelPath,
        Metaclass = Metaclass,
        Strategy = Strategy.Name(),
        Seed = Seed,
        LearnSteps = LearnSteps,
        LoraRank = LoraRank,
        Batch = Batch,
        InversionSteps = InversionSteps,
        Split = Split,
        SampleSteps = SampleSteps,
        Guidance = Guidance,
        Suffixes = suffixes?.ToList() ?? merged.Suffixes,
        SuffixSource = suffixes is null ? merged.SuffixSource : suffixSource,
    };
}

/// <summary>What a generation run made.</summary>
public sealed record GenerationOutcome(IReadOnlyList<SyntheticImage> Images, IReadOnlyList<GenerationFailure> Failures, int Planned, int InversionCount, string ManifestPath);

/// <summary>The method steps as the commands run them: learn only, fit (learn + invert), or fit and generate.</summary>
public static class MethodRun
{
    public const string ConceptsFolder = "concepts";

    /// <summary>Step 1 alone: learns the concepts into <c>work/concepts</c> exactly as <see cref="DiffIIAugmenter.Fit"/> would, so a later fit reuses them.</summary>
    /// <returns>False when there was nothing to learn (already learned, or a strategy without concepts).</returns>
    /// <param name="workLock">The work folder's lock, held by the command since before it wrote anything there.</param>
    public static bool Learn(CliOutput output, ResolvedRun run, string device, string dtype, CancellationToken cancel, WorkFolderLock? workLock = null)
    {
        if (!run.Strategy.NeedsTokens()) return false;
        if (LearnedConcepts.Exists(Path.Combine(run.Work, ConceptsFolder))) return false;
        using var sd = LoadModel(output, run, device, dtype);
        // Suffixes play no part in step 1 (nor in the work folder's fingerprint).
        using var augmenter = new DiffIIAugmenter(sd, run.Options([]), run.Work, workLock);
        output.Track(progress =>
        {
            augmenter.LearnConcepts(run.Images.Images,
                new Adapter<AugmentationProgress>(p => progress.Report(new StepProgress(StageName(p.Stage), p.Done, p.Total, p.Loss))), cancel);
            return true;
        });
        return true;
    }

    /// <summary>Steps 1 and 2a (what is missing of them); with <paramref name="generate"/> also steps 2b and 3.</summary>
    public static GenerationOutcome Fit(CliOutput output, ResolvedRun run, IReadOnlyList<string> suffixes, bool generate, string device, string dtype, CancellationToken cancel,
        WorkFolderLock? workLock = null)
    {
        using var sd = LoadModel(output, run, device, dtype);
        using var augmenter = new DiffIIAugmenter(sd, run.Options(suffixes), run.Work, workLock);
        if (generate) foreach (string warning in augmenter.Warnings) output.Warning(warning);
        return output.Track(progress =>
        {
            var adapter = new Adapter<AugmentationProgress>(p => progress.Report(new StepProgress(StageName(p.Stage), p.Done, p.Total, p.Loss)));
            augmenter.Fit(run.Images.Images, adapter, cancel);
            int inversions = augmenter.Pool?.Count ?? 0;
            if (!generate) return new GenerationOutcome([], [], 0, inversions, augmenter.ManifestPath);
            int planned = augmenter.Plan(cancel).Count;
            var images = augmenter.Generate(adapter, cancel);
            return new GenerationOutcome(images, augmenter.Failures.ToList(), planned, inversions, augmenter.ManifestPath);
        });
    }

    static string StageName(string stage) => stage switch
    {
        "learn" => "learning concepts",
        "invert" => "inverting images",
        "generate" => "generating images",
        _ => stage,
    };

    static StableDiffusion LoadModel(CliOutput output, ResolvedRun run, string device, string dtype)
    {
        output.Detail($"loading {run.ModelPath} on {device} ({dtype}, {TorchSharp.torch.get_num_threads()} CPU threads)");
        return ModelLocator.Load(run.ModelPath, device, dtype, run.Tokenizer);
    }

    public sealed class Adapter<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
