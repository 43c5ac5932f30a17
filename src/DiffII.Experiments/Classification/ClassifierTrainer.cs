using DiffII.MLNet.FineTuning;
using Microsoft.ML;
using Microsoft.ML.Trainers;
using Microsoft.ML.Trainers.LightGbm;

namespace DiffII.Experiments.Classification;

/// <summary>The columns a trainer reads: a key label, a Single feature vector, and an optional example weight.</summary>
public sealed record TrainerColumns(string Label, string Features, string? Weight)
{
    /// <summary>The image column (path, bytes or MLImage), for trainers that read images; null when the data has none.</summary>
    public string? Image { get; init; }
    /// <summary>The folder relative paths in <see cref="Image"/> resolve against (path columns only).</summary>
    public string? ImageFolder { get; init; }
    /// <summary>
    /// For trainers fed <see cref="ReplacementFeed.OwnSchedule"/>: the Boolean synthetic flag when the trainer is to
    /// draw the replacement schedule itself, null when every row is to be trained on as it is.
    /// </summary>
    public string? IsSynthetic { get; init; }
    /// <summary>The UInt32 synthetic-image number (rows of one image share it), with <see cref="IsSynthetic"/>.</summary>
    public string? SyntheticGroup { get; init; }
    /// <summary>The replacement probability p, with <see cref="IsSynthetic"/>.</summary>
    public double ReplacementProbability { get; init; }
}

/// <summary>
/// How a trainer is fed the replacement schedule (<see cref="DiffII.MLNet.Data.ReplacementMixingDataView"/>: each pass over the
/// data replaces each original, with probability p, by a synthetic image of its class). Which one fits depends on how
/// the trainer reads its data, measured by counting cursors during <c>Fit</c> (see <see cref="ClassifierTrainer"/>).
/// </summary>
public enum ReplacementFeed
{
    /// <summary>
    /// The live mixing view: every cursor the trainer opens is a new draw. Only for trainers whose every pass is a
    /// step of their own (SGD-style); a full-batch optimiser would see its objective change under its line search.
    /// </summary>
    EachPass,

    /// <summary>
    /// The schedule in expectation (<see cref="DiffII.MLNet.Data.ExpectedReplacementDataView"/>): every row once, weighted
    /// by how often a pass yields it on average. For convex full-batch trainers (L-BFGS): one fixed objective whose
    /// optimum is the schedule's expected one.
    /// </summary>
    Expected,

    /// <summary>
    /// A fixed number of draws stacked one after another and cached (each pass one image per original, ids unique), so
    /// the trainer sees several mixes while every cursor it opens reads the same rows. Needed by trainers that load
    /// the data once or index per-row state by row id (SDCA, LightGBM).
    /// </summary>
    StackedPasses,

    /// <summary>
    /// The whole augmented data with its synthetic flag, groups and weights: the trainer draws the schedule itself,
    /// once per epoch (the ResNet-18 fine-tuning trainer, as the paper trains its classifiers).
    /// </summary>
    OwnSchedule,
}

/// <summary>
/// A trainer in the comparison: a name, the estimator it builds for given columns (including any normaliser it
/// needs, so the saved model scores raw features), and how it takes the replacement schedule.
/// </summary>
/// <remarks>
/// What the built-in trainers do with a mixing view that draws afresh on every cursor (counted in this repository's
/// tests, 300 rows, ML.NET 5.0.1): L-BFGS with one thread opens one cursor per function evaluation (58 for a small
/// problem), so every evaluation sees a new mix; with more threads it loads the data into memory in a single pass
/// and sees one mix. SDCA keeps a dual variable per row id and fails (index out of range) when later passes bring
/// rows the first pass did not have. LightGBM opens several cursors while building its dataset (bin sampling, then
/// loading) and then trains on that one dataset. L-BFGS streaming a live view would thus evaluate its line search on a
/// new mix each time, changing the objective under its own feet; it gets the schedule in expectation
/// (<see cref="ReplacementFeed.Expected"/>). SDCA and LightGBM get <see cref="ReplacementFeed.StackedPasses"/>.
/// </remarks>
public sealed record ClassifierTrainer(string Name, Func<MLContext, TrainerColumns, IEstimator<ITransformer>> Create, ReplacementFeed Feed, bool ReadsImages = false)
{
    /// <summary>Multinomial logistic regression by L-BFGS on min-max normalised features, fed the schedule in expectation (see remarks); one thread, so runs repeat exactly.</summary>
    public static ClassifierTrainer LbfgsMaximumEntropy(float l2Regularization = 1e-2f, int maximumIterations = 200) =>
        new("LbfgsMaximumEntropy", (ml, c) => ml.Transforms.NormalizeMinMax(c.Features)
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = c.Label,
                FeatureColumnName = c.Features,
                ExampleWeightColumnName = c.Weight,
                L1Regularization = 0,
                L2Regularization = l2Regularization,
                OptimizationTolerance = 1e-6f,
                HistorySize = 20,
                MaximumNumberOfIterations = maximumIterations,
                NumberOfThreads = 1,
            })), ReplacementFeed.Expected);

    /// <summary>Multinomial logistic regression by SDCA on min-max normalised features; fixed L2 so more rows do not retune it.</summary>
    public static ClassifierTrainer SdcaMaximumEntropy(float l2Regularization = 1e-3f, int maximumIterations = 30) =>
        new("SdcaMaximumEntropy", (ml, c) => ml.Transforms.NormalizeMinMax(c.Features)
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(new SdcaMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = c.Label,
                FeatureColumnName = c.Features,
                ExampleWeightColumnName = c.Weight,
                L1Regularization = 0,
                L2Regularization = l2Regularization,
                MaximumNumberOfIterations = maximumIterations,
                NumberOfThreads = 1,
                Shuffle = true,
            })), ReplacementFeed.StackedPasses);

    /// <summary>Gradient-boosted trees (LightGBM, multiclass softmax), seeded and single-threaded so runs repeat exactly.</summary>
    public static ClassifierTrainer LightGbm(int iterations = 100, int leaves = 15, int minimumExamplesPerLeaf = 5, double learningRate = 0.1, int seed = 1) =>
        new("LightGbm", (ml, c) => ml.MulticlassClassification.Trainers.LightGbm(new LightGbmMulticlassTrainer.Options
        {
            LabelColumnName = c.Label,
            FeatureColumnName = c.Features,
            ExampleWeightColumnName = c.Weight,
            NumberOfIterations = iterations,
            NumberOfLeaves = leaves,
            MinimumExampleCountPerLeaf = minimumExamplesPerLeaf,
            LearningRate = learningRate,
            Seed = seed,
            NumberOfThreads = 1,
            Silent = true,
            Verbose = false,
        }), ReplacementFeed.StackedPasses);

    /// <summary>
    /// Fine-tunes the ImageNet ResNet-18 end to end on the images (not the features), drawing the replacement schedule
    /// afresh every epoch as the paper does. Small inputs are upscaled to <paramref name="imageSize"/> (64–224 px).
    /// </summary>
    public static ClassifierTrainer ResNet18FineTune(int seed, int imageSize = 64, int epochs = 15, int batchSize = 32, double learningRate = 1e-3) =>
        new("ResNet18FineTune", (ml, c) => ml.MulticlassClassification.Trainers.ResNet18FineTune(new ResNet18FineTuneOptions
        {
            LabelColumnName = c.Label,
            ImageColumnName = c.Image ?? throw new ArgumentException(
                "The ResNet-18 fine-tuning trainer reads images: set ClassifierComparisonOptions.ImageColumn to the data's image column."),
            ImageFolder = c.ImageFolder,
            ExampleWeightColumnName = c.Weight,
            IsSyntheticColumnName = c.IsSynthetic,
            SyntheticGroupColumnName = c.SyntheticGroup,
            ReplacementProbability = c.ReplacementProbability,
            ImageSize = imageSize,
            Epochs = epochs,
            BatchSize = batchSize,
            LearningRate = learningRate,
            Seed = seed,
        }), ReplacementFeed.OwnSchedule, ReadsImages: true);

    /// <summary>The three trainers Model Builder users would try for image features, with the settings above.</summary>
    public static IReadOnlyList<ClassifierTrainer> Defaults() => [LbfgsMaximumEntropy(), SdcaMaximumEntropy(), LightGbm()];
}
