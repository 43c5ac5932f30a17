using DiffII.Augmentation;
using DiffII.Diffusion.Pipelines;
using DiffII.MLNet.Data;
using Microsoft.ML;

namespace DiffII.MLNet;

/// <summary>
/// <c>mlContext.Data.DiffIIAugment(...)</c> (the primary API: adding rows is a data operation, like <c>TakeRows</c>),
/// <c>mlContext.Transforms.DiffIIAugment(...)</c> (the same as an estimator, for training-scoped pipelines) and
/// <c>mlContext.Data.ReplacementMixing(...)</c>.
/// </summary>
public static class DiffIICatalog
{
    /// <summary>
    /// Diff-II augmentation of training data: runs the method on the labelled images of <paramref name="data"/>
    /// (learning, inversion and generation are cached in <see cref="DiffIIAugmentOptions.CacheFolder"/>) and returns
    /// <paramref name="data"/> followed by the synthetic rows, with the IsSynthetic, weight and synthetic-group columns.
    /// Augment training data only; test data stays as it is.
    /// </summary>
    /// <param name="generator">An already loaded model instead of <see cref="DiffIIAugmentOptions.GeneratorPath"/> (see <see cref="DiffIIAugmentEstimator(DiffIIAugmentOptions, StableDiffusion?, IProgress{AugmentationProgress}?, CancellationToken)"/>).</param>
    /// <param name="progress">Reports of the stages (learn, invert, generate).</param>
    /// <param name="cancellationToken">Stops at the next step; the same call resumes from the cache folder.</param>
    public static IDataView DiffIIAugment(this DataOperationsCatalog catalog, IDataView data, DiffIIAugmentOptions options,
        StableDiffusion? generator = null, IProgress<AugmentationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(data);
        return new DiffIIAugmentEstimator(options, generator, progress, cancellationToken).Fit(data).Transform(data);
    }

    /// <summary>
    /// Diff-II augmentation: appends synthetic rows of every class. Append it with <see cref="Microsoft.ML.Data.TransformerScope.Training"/>
    /// (or use <see cref="DiffIIAugmentEstimator.TrainingOnly"/>) so scoring models leave it out.
    /// </summary>
    /// <param name="generator">An already loaded model instead of <see cref="DiffIIAugmentOptions.GeneratorPath"/>.</param>
    /// <param name="progress">Reports of Fit's stages.</param>
    /// <param name="cancellationToken">Stops Fit at the next step; a Fit with the same cache folder resumes there.</param>
    public static DiffIIAugmentEstimator DiffIIAugment(this TransformsCatalog catalog, DiffIIAugmentOptions options,
        StableDiffusion? generator = null, IProgress<AugmentationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new DiffIIAugmentEstimator(options, generator, progress, cancellationToken);
    }

    /// <summary>Diff-II augmentation with a generator loaded from <paramref name="generatorPath"/> (a diffusers folder or checkpoint) on <paramref name="device"/>.</summary>
    /// <param name="expansionRate">Synthetic images per real image of each class (the paper: 5).</param>
    /// <param name="suffixes">Prompt suffixes for the first denoising stage; with none, the split ratio is 0 (no suffix stage).</param>
    /// <param name="imageFolder">The folder relative image paths resolve against.</param>
    /// <param name="cacheFolder">The work folder; a hashed folder under the temp folder when null (see <see cref="DiffIIAugmentOptions.CacheFolder"/>).</param>
    public static DiffIIAugmentEstimator DiffIIAugment(this TransformsCatalog catalog, string labelColumnName, string imageColumnName,
        string generatorPath, string metaclass, double expansionRate = 5, Strategy strategy = Strategy.DiffII, IReadOnlyList<string>? suffixes = null,
        string? imageFolder = null, string? cacheFolder = null, long seed = 0, string device = "cpu") =>
        catalog.DiffIIAugment(Convenience(labelColumnName, imageColumnName, metaclass, expansionRate, strategy, suffixes, imageFolder, cacheFolder, seed)
            with { GeneratorPath = generatorPath, Device = device });

    /// <summary>Diff-II augmentation with an already loaded generator (used as is, not disposed).</summary>
    /// <inheritdoc cref="DiffIIAugment(TransformsCatalog, string, string, string, string, double, Strategy, IReadOnlyList{string}?, string?, string?, long, string)"/>
    public static DiffIIAugmentEstimator DiffIIAugment(this TransformsCatalog catalog, string labelColumnName, string imageColumnName,
        StableDiffusion generator, string metaclass, double expansionRate = 5, Strategy strategy = Strategy.DiffII, IReadOnlyList<string>? suffixes = null,
        string? imageFolder = null, string? cacheFolder = null, long seed = 0) =>
        catalog.DiffIIAugment(Convenience(labelColumnName, imageColumnName, metaclass, expansionRate, strategy, suffixes, imageFolder, cacheFolder, seed), generator);

    static DiffIIAugmentOptions Convenience(string label, string image, string metaclass, double expansionRate, Strategy strategy,
        IReadOnlyList<string>? suffixes, string? imageFolder, string? cacheFolder, long seed) => new()
    {
        LabelColumnName = label,
        ImageColumnName = image,
        Metaclass = metaclass,
        ExpansionRate = expansionRate,
        Strategy = strategy,
        Suffixes = suffixes ?? [],
        SplitRatio = suffixes is { Count: > 0 } ? 0.3 : 0,
        ImageFolder = imageFolder,
        CacheFolder = cacheFolder,
        Seed = seed,
    };

    /// <summary>
    /// The paper's replacement schedule over augmented training data: each pass yields every original row or, with
    /// probability <paramref name="probability"/>, a synthetic image of its class instead (all the rows of that image,
    /// one per label for Diff-Mix's soft labels, each with its weight), drawn afresh on each pass.
    /// </summary>
    /// <remarks>
    /// Place it after featurising and caching (the source is read once per pass), and give the result straight to the
    /// trainer: <c>trainer.Fit(ml.Data.ReplacementMixing(ml.Data.Cache(featurizer.Transform(augmented)), "Label"))</c>.
    /// It works as a fresh mix per pass only for trainers that open one cursor per pass and keep no per-row state;
    /// SDCA and LightGBM need the passes stacked (see <c>ClassifierTrainer.ReplacementFeed</c>), and full-batch convex
    /// trainers such as L-BFGS are better given the schedule in expectation (<see cref="ExpectedReplacement"/>).
    /// Give the trainer the weight column (<c>SampleWeight</c>) as its example weight, so soft labels count as weighted.
    /// </remarks>
    public static ReplacementMixingDataView ReplacementMixing(this DataOperationsCatalog catalog, IDataView featurisedAndCached,
        string labelColumnName = "Label", double probability = 0.5, int seed = 0, string isSyntheticColumnName = "IsSynthetic",
        string? syntheticGroupColumnName = "SyntheticGroup", string? weightColumnName = "SampleWeight")
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(featurisedAndCached);
        return new ReplacementMixingDataView(featurisedAndCached, labelColumnName, isSyntheticColumnName, probability, seed, syntheticGroupColumnName, weightColumnName);
    }

    /// <summary>
    /// The replacement schedule in expectation, for trainers that minimise one fixed objective (L-BFGS, SDCA): every
    /// row once, its weight column scaled by how often a pass yields it on average (a replaceable original 1 − p; the
    /// synthetic images of a class sharing p per original of that class). Give the trainer
    /// <paramref name="weightColumnName"/> as its example weight (the column is added when the data has none).
    /// </summary>
    public static ExpectedReplacementDataView ExpectedReplacement(this DataOperationsCatalog catalog, IDataView augmented,
        string labelColumnName = "Label", double probability = 0.5, string isSyntheticColumnName = "IsSynthetic",
        string? syntheticGroupColumnName = "SyntheticGroup", string weightColumnName = "SampleWeight")
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(augmented);
        return new ExpectedReplacementDataView(augmented, labelColumnName, isSyntheticColumnName, probability, syntheticGroupColumnName, weightColumnName);
    }
}
