using DiffII.MLNet.Data;
using DiffII.MLNet.FineTuning;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace DiffII.Experiments.Classification;

/// <summary>How to featurise an image column with the pretrained ResNet18 that ships in a NuGet package (no download).</summary>
public sealed record ImageFeaturizerOptions
{
    /// <summary>The image column: an <see cref="MLImage"/>, a path (String) or encoded bytes (a variable-length Byte vector).</summary>
    public required string ImageColumn { get; init; }

    /// <summary>The folder relative paths resolve against (path columns only; absolute paths ignore it).</summary>
    public string? ImageFolder { get; init; }

    /// <summary>The output column: a vector of <see cref="ImageFeaturizer.FeatureCount"/> Singles.</summary>
    public string FeaturesColumn { get; init; } = ImageFeaturizer.DefaultFeaturesColumn;

    /// <summary>
    /// Whether <see cref="ImageFeaturizer.Featurize"/> caches its output and the estimator ends with a cache checkpoint.
    /// Featurising costs a ResNet18 forward pass per row, and trainers read their data many times.
    /// </summary>
    public bool CacheFeatures { get; init; } = true;

    /// <summary>The folder holding <c>ResNetPrepOnnx/</c> and <c>ResNet18Onnx/</c>; by default the application's <c>DnnImageModels</c>.</summary>
    public string? ModelDirectory { get; init; }
}

/// <summary>
/// ResNet18 image features (512 per image, the global-average-pooled last block) for an image column of any of
/// the three kinds, as an ML.NET pipeline that can be saved and loaded like any other.
/// </summary>
/// <remarks>
/// Paths go through <c>LoadImages</c>. Encoded bytes go through the custom mapping of
/// <see cref="ImageColumns.DecodeBytes"/>, so an <see cref="MLContext"/> loading a saved model that featurises bytes needs
/// <see cref="Register"/> first (<c>ClassifierModel.Load</c> does it). Intermediate columns (the loaded image,
/// its pixels, the ONNX models' inputs and outputs) are dropped so the cache holds only the features.
/// </remarks>
public static class ImageFeaturizer
{
    public const string DefaultFeaturesColumn = "Features";
    public const int FeatureCount = 512;
    public const int InputSize = 224;
    // Encoded bytes are decoded by the fine-tuning trainer's mapping (one decoder for both), into its columns.
    const string EncodedColumn = ImageColumns.EncodedColumn;
    const string DecodedColumn = ImageColumns.DecodedColumn;
    const string ResizedColumn = "DiffIIResizedImage";
    const string PixelsColumn = "DiffIIPixels";
    // Columns the ResNet18 extension adds on its way (see ResNet18Extension in Microsoft.ML.DnnImageFeaturizer.ResNet18).
    static readonly string[] ResNetIntermediates = ["OriginalInput", "PreprocessedInput", "Input247", "Pooling395_Output_0"];

    /// <summary>The default model folder, where the ResNet18 package copies its ONNX files.</summary>
    public static string DefaultModelDirectory => Path.Combine(AppContext.BaseDirectory, "DnnImageModels");

    /// <summary>Registers the byte-decoding mapping with <paramref name="ml"/>, needed to load a saved model that decodes bytes.</summary>
    public static void Register(MLContext ml) => ml.ComponentCatalog.RegisterAssembly(typeof(ImageColumns).Assembly);

    /// <summary>The featurising estimator for inputs shaped like <paramref name="inputSchema"/>.</summary>
    public static IEstimator<ITransformer> Create(MLContext ml, DataViewSchema inputSchema, ImageFeaturizerOptions options)
    {
        var kind = ColumnKinds.DetectImage(inputSchema, options.ImageColumn);
        foreach (var reserved in new[] { EncodedColumn, DecodedColumn, ResizedColumn, PixelsColumn }.Concat(ResNetIntermediates))
            if (inputSchema.GetColumnOrNull(reserved) is not null)
                throw new ArgumentException($"The input has a column '{reserved}', a name the ResNet18 featurizer uses internally; rename it.", nameof(inputSchema));
        if (options.FeaturesColumn == options.ImageColumn)
            throw new ArgumentException($"The features column and the image column are both '{options.ImageColumn}'; choose another features column name.", nameof(options));
        string modelDirectory = options.ModelDirectory ?? DefaultModelDirectory;
        foreach (var file in new[] { Path.Combine("ResNetPrepOnnx", "ResNetPreprocess.onnx"), Path.Combine("ResNet18Onnx", "ResNet18.onnx") })
            if (!File.Exists(Path.Combine(modelDirectory, file)))
                throw new FileNotFoundException(
                    $"The ResNet18 model file {Path.Combine(modelDirectory, file)} is missing. The package Microsoft.ML.DnnImageFeaturizer.ResNet18 " +
                    "copies DnnImageModels/ into the application's output folder; reference it from the application or set ModelDirectory.",
                    Path.Combine(modelDirectory, file));

        var dropped = new List<string> { ResizedColumn, PixelsColumn };
        IEstimator<ITransformer> chain;
        string imageColumn;
        switch (kind)
        {
            case ImageColumnKind.Path:
                chain = ml.Transforms.LoadImages(DecodedColumn, options.ImageFolder ?? "", options.ImageColumn);
                imageColumn = DecodedColumn;
                dropped.Add(DecodedColumn);
                break;
            case ImageColumnKind.Bytes:
                chain = ImageColumns.DecodeBytes(ml, options.ImageColumn);
                imageColumn = DecodedColumn;
                dropped.Add(EncodedColumn);
                dropped.Add(DecodedColumn);
                break;
            default:
                chain = new EstimatorChain<ITransformer>();
                imageColumn = options.ImageColumn;
                break;
        }
        dropped.AddRange(ResNetIntermediates);

        var featurised = chain
            .Append(ml.Transforms.ResizeImages(ResizedColumn, InputSize, InputSize, imageColumn))
            .Append(ml.Transforms.ExtractPixels(PixelsColumn, ResizedColumn))
            .Append(ml.Transforms.DnnFeaturizeImage(options.FeaturesColumn,
                m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn, modelDirectory), PixelsColumn))
            .Append(ml.Transforms.DropColumns(dropped.ToArray()));
        return options.CacheFeatures ? featurised.AppendCacheCheckpoint(ml) : featurised;
    }

    /// <summary>
    /// Fits the featurizer to <paramref name="data"/>'s schema (nothing is learnt: the network is pretrained) and
    /// returns it with the featurised data, cached when <see cref="ImageFeaturizerOptions.CacheFeatures"/> is set, so
    /// every later pass reads stored features instead of running the network again.
    /// </summary>
    public static (ITransformer Featurizer, IDataView Features) Featurize(MLContext ml, IDataView data, ImageFeaturizerOptions options)
    {
        var featurizer = Create(ml, data.Schema, options with { CacheFeatures = false }).Fit(data);
        var features = featurizer.Transform(data);
        return (featurizer, options.CacheFeatures ? ml.Data.Cache(features) : features);
    }
}
