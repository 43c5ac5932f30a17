using DiffII.Diffusion.Runtime;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.FineTuning;

/// <summary>
/// An ML.NET multiclass trainer that fine-tunes the ImageNet ResNet-18 end to end in TorchSharp: from an image column
/// (path, bytes or MLImage) and a key-typed label to <c>Score</c> (class probabilities) and <c>PredictedLabel</c>
/// (a key with the label's values).
/// </summary>
/// <remarks>
/// <para>The fitted model is a <see cref="TransformerChain{TLastTransformer}"/> of ML.NET's own transforms: image
/// decoding and resizing, the fine-tuned network as an <c>OnnxTransformer</c> (its weights travel inside the model zip),
/// an arg-max mapping and a value-to-key mapping for <c>PredictedLabel</c>. <c>mlContext.Model.Load</c> needs
/// <see cref="ResNet18FineTuning.Register"/> first, for the two small custom mappings.</para>
/// <para>Why not Microsoft.ML.TorchSharp's <c>TorchSharpBaseTrainer</c>: its constructors are internal and its abstract
/// members <c>private protected</c>, and ML.NET's saving API (<c>ModelSaveContext</c>, <c>LoadableClass</c>) is internal,
/// so no assembly outside ML.NET can derive from it. It is also built against TorchSharp 0.102.7: against 0.107 one of
/// its calls no longer binds (<c>nn.functional.interpolate</c> gained a parameter, a MissingMethodException at run
/// time), and it pins Microsoft.ML 6.0.0 and SkiaSharp 3. This trainer follows its conventions instead: a catalog
/// extension, options with a seed and a device, the TorchSharp weights inside the model zip.</para>
/// </remarks>
public sealed class ResNet18FineTuneTrainer : IEstimator<TransformerChain<ITransformer>>
{
    readonly MLContext _ml;
    readonly ResNet18FineTuneOptions _options;

    public ResNet18FineTuneTrainer(MLContext ml, ResNet18FineTuneOptions options)
    {
        _ml = ml;
        _options = options;
        if (options.ImageSize is < 64 or > 224) throw new ArgumentOutOfRangeException(nameof(options), $"ImageSize must be 64–224 px; got {options.ImageSize}.");
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), $"BatchSize must be at least 1; got {options.BatchSize}.");
        if (options.Epochs < 1) throw new ArgumentOutOfRangeException(nameof(options), $"Epochs must be at least 1; got {options.Epochs}.");
        if (!(options.LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(options), $"LearningRate must be positive; got {options.LearningRate}.");
        if (options.ReplacementProbability is < 0 or > 1 || double.IsNaN(options.ReplacementProbability))
            throw new ArgumentOutOfRangeException(nameof(options), $"ReplacementProbability must be in [0, 1]; got {options.ReplacementProbability}.");
        if (options.ValidationFraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(options), $"ValidationFraction must be in [0, 1); got {options.ValidationFraction}.");
        if (options.CropScaleMin is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), $"CropScaleMin must be in (0, 1]; got {options.CropScaleMin}.");
    }

    public ResNet18FineTuneOptions Options => _options;

    /// <summary>Statistics of the last <see cref="Fit"/>: epochs run, mean loss per epoch, the epoch kept by early stopping.</summary>
    public FineTuneReport? LastReport { get; private set; }

    /// <summary>The number of classes (the label key's count), or an error that names the label column.</summary>
    static int Classes(DataViewSchema schema, string label)
    {
        var column = schema.GetColumnOrNull(label)
            ?? throw new ArgumentOutOfRangeException(nameof(label),
                $"The label column '{label}' is not in the input. Columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"{c.Name} ({c.Type})"))}.");
        if (column.Type is not KeyDataViewType key || key.RawType != typeof(uint) || key.Count < 2 || key.Count > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(label),
                $"The label column '{label}' has type {column.Type}; the ResNet-18 trainer needs a UInt32 key with at least two classes (MapValueToKey).");
        return (int)key.Count;
    }

    static string[] ClassNames(DataViewSchema.Column label, int count)
    {
        if (!label.HasKeyValues()) return Enumerable.Range(1, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        VBuffer<ReadOnlyMemory<char>> values = default;
        label.GetKeyValues(ref values);
        return values.DenseValues().Select(v => v.ToString()).ToArray();
    }

    public TransformerChain<ITransformer> Fit(IDataView input)
    {
        using var held = HeldTensors.Hold();
        int classes = Classes(input.Schema, _options.LabelColumnName);
        var (toPixels, intermediates) = ImageColumns.ToPixels(_ml, input.Schema, _options.ImageColumnName, _options.ImageFolder, _options.ImageSize);
        var pixelTransformer = toPixels.Fit(input);
        var data = TrainingSet.Read(pixelTransformer.Transform(input), _options, classes, _options.CancellationToken);

        float[] mean = ResNet18OnnxWeights.ChannelMeanBgr(_options.InitialModelPath is { } p
            ? Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(p)!)!, "ResNetPrepOnnx", "ResNetPreprocess.onnx") : null);
        var loop = new FineTuneLoop(_options, data, mean);
        using var model = loop.Run();
        LastReport = new FineTuneReport(loop.EpochsRun, loop.EpochLosses.ToArray(), loop.BestEpoch, data.Pixels.Count, data.Originals.Count, data.SkippedMissingLabels,
            loop.EpochPlans.Select(plan => (IReadOnlyList<long[]>)plan.Select(e => data.SourceRows[e]).ToList()).ToList());

        // Handed over as a stream: OnnxTransformer keeps its own copy (and saves it into the model zip), so no file of ours outlives Fit.
        using var onnx = new MemoryStream(ResNet18OnnxExport.Export(model, _options.ImageSize, mean), writable: false);

        var names = ClassNames(input.Schema[_options.LabelColumnName], classes);
        var scoring = _ml.Transforms.ApplyOnnxModel([ScoreColumn], [ImageColumns.PixelsColumn], onnx)
            .Append(_ml.Transforms.CustomMapping(new ArgMaxFactory().GetMapping(), ImageColumns.ArgMaxContract))
            .Append(_ml.Transforms.Conversion.MapValue(PredictedLabelColumn,
                names.Select((n, i) => new KeyValuePair<uint, ReadOnlyMemory<char>>((uint)i, n.AsMemory())), ImageColumns.PredictedIndexColumn, treatValuesAsKeyType: true))
            .Append(_ml.Transforms.DropColumns([.. intermediates, ImageColumns.PredictedIndexColumn]));
        var pixels = pixelTransformer.Transform(input);
        var rest = scoring.Fit(pixels);
        var chain = new TransformerChain<ITransformer>();
        foreach (var t in pixelTransformer as IEnumerable<ITransformer> ?? [pixelTransformer]) chain = chain.Append(t);
        foreach (var t in rest) chain = chain.Append(t);
        return chain;
    }

    public const string PredictedLabelColumn = "PredictedLabel";
    public const string ScoreColumn = ResNet18OnnxExport.ScoreName;

    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var image = inputSchema.FirstOrDefault(c => c.Name == _options.ImageColumnName);
        if (image.Name is null)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The image column '{_options.ImageColumnName}' is not in the input.");
        var label = inputSchema.FirstOrDefault(c => c.Name == _options.LabelColumnName);
        if (label.Name is null)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The label column '{_options.LabelColumnName}' is not in the input.");
        if (!label.IsKey || label.ItemType is not KeyDataViewType key)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The label column '{_options.LabelColumnName}' has type {label.ItemType}; the ResNet-18 trainer needs a key (MapValueToKey).");
        // SchemaShape.Column's constructor is internal to ML.NET, so let ML.NET's own estimators describe the two
        // columns: a float vector with one slot per class, and a key with the label's count and values.
        if (key.Count < 2) throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The label column '{_options.LabelColumnName}' needs at least two classes.");
        return _ml.Transforms.Conversion.MapKeyToVector(ScoreColumn, _options.LabelColumnName)
            .Append(_ml.Transforms.CopyColumns(PredictedLabelColumn, _options.LabelColumnName))
            .GetOutputSchema(inputSchema);
    }
}

/// <summary>What a fine-tuning run did.</summary>
/// <param name="Examples">Training images held in memory (originals and synthetic images).</param>
/// <param name="EpochSourceRows">Per epoch run in this call, the images trained on in training order, each as its input rows
/// (one for an original, one per label for a soft-labelled synthetic image).</param>
public sealed record FineTuneReport(int EpochsRun, double[] EpochLosses, int? BestEpoch, int Examples, int Originals, int SkippedMissingLabels,
    IReadOnlyList<IReadOnlyList<long[]>> EpochSourceRows);

/// <summary>The trainer's catalog entry and the registration a loading MLContext needs.</summary>
public static class ResNet18FineTuning
{
    /// <summary>
    /// Fine-tunes an ImageNet ResNet-18 end to end (TorchSharp) on an image column and a key label, with the paper's
    /// per-epoch replacement mixing when the data has DiffIIAugment's IsSynthetic/SyntheticGroup/SampleWeight columns.
    /// </summary>
    public static ResNet18FineTuneTrainer ResNet18FineTune(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, ResNet18FineTuneOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        // The catalog's own environment is internal to ML.NET; the fitted transforms work in any MLContext, so the
        // trainer builds them in one of its own (seeded like the run).
        return new ResNet18FineTuneTrainer(new MLContext(options.Seed), options);
    }

    /// <summary>Registers the custom mappings (byte decoding, arg-max) so <c>mlContext.Model.Load</c> can read a fitted model.</summary>
    public static void Register(MLContext ml) => ml.ComponentCatalog.RegisterAssembly(typeof(ResNet18FineTuning).Assembly);
}
