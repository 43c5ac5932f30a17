using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Inversion;

namespace DiffII;

/// <summary>A training image: a unique id, its class label, and how to read its encoded bytes.</summary>
public sealed record LabeledImage(string Id, string Label, Func<byte[]> ReadBytes)
{
    /// <summary>An image read from <paramref name="path"/> when needed; a FIFO or device there is refused, never opened (it could block forever).</summary>
    public static LabeledImage FromFile(string path, string label, string? id = null) => new(id ?? path, label, () =>
        Storage.FileKind.Of(path) is var kind && kind is Storage.FileKindValue.Regular or Storage.FileKindValue.Missing
            ? File.ReadAllBytes(path)
            : throw new IOException($"{path} is {Storage.FileKind.Describe(kind)}, not a regular file; it is not read."));
}

/// <summary>Sampler settings of the generation step.</summary>
public sealed record GenerationOptions
{
    /// <summary>DDIM steps (the paper: 25).</summary>
    public int Steps { get; init; } = 25;
    /// <summary>Classifier-free guidance scale (the paper: 7.5).</summary>
    public double GuidanceScale { get; init; } = 7.5;
    /// <summary>Samples per U-Net call (each doubled for CFG).</summary>
    public int BatchSize { get; init; } = 8;
}

/// <summary>Everything a Diff-II run (or a baseline run) needs besides the model and the images.</summary>
public sealed record AugmentationOptions
{
    public required string Metaclass { get; init; }
    public Strategy Strategy { get; init; } = Strategy.DiffII;
    public SampleBudget Budget { get; init; } = new SampleBudget.Expansion(5);
    public double SplitRatio { get; init; } = 0.3;
    public IReadOnlyList<string> Suffixes { get; init; } = [];
    public ConceptOptions? Concepts { get; init; }
    public InversionOptions Inversion { get; init; } = new();
    public GenerationOptions Generation { get; init; } = new();
    /// <summary>Pixel size images are resized and centre-cropped to; the model's native size by default.</summary>
    public int? Resolution { get; init; }
    public long Seed { get; init; }
    /// <summary>Concepts trained elsewhere (a folder with learned_embeds + LoRA + concepts.json) instead of learning them.</summary>
    public string? PretrainedConceptsFolder { get; init; }

    internal ConceptOptions ConceptOptions => (Concepts ?? new ConceptOptions()) with
    {
        Metaclass = Metaclass,
        TrainLora = Strategy.NeedsLora() && (Concepts?.TrainLora ?? true),
        Seed = Concepts?.Seed ?? Seed,
    };
}

/// <summary>One finished synthetic image and its provenance.</summary>
public sealed record SyntheticImage(string Id, string ImagePath, string ClassName, IReadOnlyList<ManifestLabel> Labels, ManifestEntry Provenance);

public sealed record AugmentationProgress(string Stage, int Done, int Total, double? Loss, TimeSpan Elapsed);

/// <summary>A sample that could not be produced (e.g. its latent became NaN); it is reported, never written.</summary>
public sealed record GenerationFailure(string SampleId, string Reason);
