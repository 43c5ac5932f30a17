using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using DiffII.Augmentation;
using DiffII.Diffusion.Pipelines;
using DiffII.MLNet.Data;
using DiffII.Storage;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using SkiaSharp;

namespace DiffII.MLNet;

/// <summary>
/// Diff-II data augmentation as an ML.NET estimator. <c>Fit</c> reads the labelled images, learns the class concepts,
/// inverts the images and generates the synthetic ones (all cached in <see cref="DiffIIAugmentOptions.CacheFolder"/>);
/// the fitted <see cref="DiffIIAugmentTransformer"/> appends those synthetic rows to the data it transforms.
/// </summary>
/// <remarks>
/// Synthetic rows are training data only, so append this estimator with <see cref="TransformerScope.Training"/>:
/// <c>new EstimatorChain&lt;ITransformer&gt;().Append(augment, TransformerScope.Training).Append(featurizer).Append(trainer)</c>
/// (or <see cref="TrainingOnly"/>). <see cref="EstimatorChain{TLastTransformer}.Fit"/> ignores scopes, so the
/// featurizer and the trainer are fitted on originals + synthetic rows; the fitted chain's <c>Transform</c> and
/// <c>GetModelFor(TransformerScope.Scoring)</c> leave the augmenter out, and the latter is the model to save.
/// Do not make the augmenter the first estimator of <c>augment.Append(...)</c>: ML.NET gives the start of such a
/// chain scope Everything, so it would add synthetic rows to test data too.
/// </remarks>
public sealed class DiffIIAugmentEstimator : IEstimator<DiffIIAugmentTransformer>
{
    /// <summary>The state file the transformer writes into its cache folder and <see cref="DiffIIAugmentTransformer.LoadFrom"/> reads.</summary>
    public const string StateFileName = "diffii-mlnet.json";

    // Used only to build SchemaShape columns through ML.NET's public API (CustomMapping's output schema).
    readonly MLContext _schemaContext = new();

    public DiffIIAugmentEstimator(DiffIIAugmentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public DiffIIAugmentOptions Options { get; }

    /// <summary>This estimator as a chain with scope <see cref="TransformerScope.Training"/>, ready for <c>.Append(featurizer).Append(trainer)</c>.</summary>
    public EstimatorChain<DiffIIAugmentTransformer> TrainingOnly() => new EstimatorChain<ITransformer>().Append(this, TransformerScope.Training);

    /// <summary>Checks the label and image columns (errors name the column) and adds the IsSynthetic (Boolean), weight (Single) and synthetic group (UInt32) columns.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var columns = inputSchema.ToDictionary(c => c.Name);
        CheckLabel(columns, Options.LabelColumnName);
        CheckImage(columns, Options.ImageColumnName);
        foreach (var added in Options.AddedColumnNames)
            if (columns.ContainsKey(added))
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The input already has a column '{added}'; choose another name for DiffIIAugment's output column.");
        foreach (var column in AddedColumns()) columns[column.Name] = column;
        return new SchemaShape(columns.Values);
    }

    static string Describe(SchemaShape.Column c) =>
        (c.Kind switch { SchemaShape.Column.VectorKind.Vector => "Vector<", SchemaShape.Column.VectorKind.VariableVector => "VarVector<", _ => "" })
        + (c.IsKey ? $"Key<{c.ItemType}>" : c.ItemType.ToString())
        + (c.Kind == SchemaShape.Column.VectorKind.Scalar ? "" : ">");

    static SchemaShape.Column Find(Dictionary<string, SchemaShape.Column> columns, string name, string role) =>
        columns.TryGetValue(name, out var column) ? column
            : throw new ArgumentOutOfRangeException("inputSchema",
                $"The {role} column '{name}' is not in the input. Columns: {string.Join(", ", columns.Values.Select(c => $"{c.Name} ({Describe(c)})"))}.");

    static void CheckLabel(Dictionary<string, SchemaShape.Column> columns, string name)
    {
        var c = Find(columns, name, "label");
        bool ok = c.Kind == SchemaShape.Column.VectorKind.Scalar && (
            c.ItemType is TextDataViewType && !c.IsKey
            || c.IsKey && c.ItemType.RawType == typeof(uint)
            || !c.IsKey && c.ItemType is NumberDataViewType n && n.RawType is var t
               && (t == typeof(int) || t == typeof(long) || t == typeof(uint) || t == typeof(short) || t == typeof(byte)));
        if (!ok)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"The label column '{name}' has type {Describe(c)}; DiffIIAugment needs a class label: String, a key (MapValueToKey) " +
                "or an integer type. For a floating-point label, map it to a key first.");
    }

    static void CheckImage(Dictionary<string, SchemaShape.Column> columns, string name)
    {
        var c = Find(columns, name, "image");
        if (c.Kind == SchemaShape.Column.VectorKind.Scalar && c.ItemType is ImageDataViewType image)
        {
            CheckUnsized(name, image);
            return;
        }
        if (c.Kind == SchemaShape.Column.VectorKind.Scalar && c.ItemType is TextDataViewType) return;
        if (c.Kind == SchemaShape.Column.VectorKind.VariableVector && c.ItemType == NumberDataViewType.Byte) return;
        throw new ArgumentOutOfRangeException("inputSchema",
            $"The image column '{name}' has type {Describe(c)}; DiffIIAugment needs an image (LoadImages), " +
            "a path (String, before LoadImages) or encoded bytes (LoadRawImageBytes: a variable-length Byte vector).");
    }

    /// <summary>Synthetic images come at the generator's size, so an image column fixed to one size cannot take them.</summary>
    internal static void CheckUnsized(string name, ImageDataViewType image)
    {
        if (image.Height > 0 || image.Width > 0)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"The image column '{name}' holds images of a fixed size ({image.Width}×{image.Height}, as ResizeImages makes); the synthetic " +
                "images come at the generator's size. Put DiffIIAugment before ResizeImages, on the loaded (unsized) images.");
    }

    sealed class NoColumns;
    sealed class AddedRow
    {
        public bool IsSynthetic { get; set; }
        public float SampleWeight { get; set; }
        public uint SyntheticGroup { get; set; }
    }

    IEnumerable<SchemaShape.Column> AddedColumns()
    {
        // SchemaShape.Column has no public constructor; a custom mapping's output schema is the public way to make one.
        var output = SchemaDefinition.Create(typeof(AddedRow));
        output[nameof(AddedRow.IsSynthetic)].ColumnName = Options.IsSyntheticColumnName;
        output[nameof(AddedRow.SampleWeight)].ColumnName = Options.WeightColumnName;
        output[nameof(AddedRow.SyntheticGroup)].ColumnName = Options.SyntheticGroupColumnName;
        var shape = _schemaContext.Transforms.CustomMapping<NoColumns, AddedRow>((_, _) => { }, contractName: null, outputSchemaDefinition: output)
            .GetOutputSchema(new SchemaShape([]));
        return shape;
    }

    /// <summary>
    /// Reads the labelled images, runs Diff-II (concepts, inversions, generation; whatever the cache folder already
    /// holds is reused) and returns the transformer holding the synthetic rows.
    /// </summary>
    public DiffIIAugmentTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var o = Options;
        var label = ColumnKinds.Label(input.Schema, o.LabelColumnName);
        var kind = ColumnKinds.DetectImage(input.Schema, o.ImageColumnName);
        if (input.Schema[o.ImageColumnName].Type is ImageDataViewType imageType) CheckUnsized(o.ImageColumnName, imageType);
        foreach (var added in o.AddedColumnNames)
            if (input.Schema.GetColumnOrNull(added) is not null)
                throw new ArgumentOutOfRangeException(nameof(input), $"The input already has a column '{added}'; choose another name for DiffIIAugment's output column.");

        var (images, describe, skipped) = ReadImages(input, label, kind);
        var augmentation = o.ToAugmentationOptions();
        var generator = o.Generator ?? StableDiffusion.Load(o.GeneratorPath!, new StableDiffusionLoadOptions { Device = TorchSharp.torch.device(o.Device) });
        try
        {
            string cache = Path.GetFullPath(o.CacheFolder ?? DefaultCacheFolder(images, generator, o));
            // A cache inside the image folder would have its synthetic PNGs walked as training images next time.
            if (o.ImageFolder is string root && Directory.Exists(root)
                && DiffII.Imaging.ImageFolderWalker.IsWithin(DiffII.Imaging.ImageFolderWalker.RealPath(cache), DiffII.Imaging.ImageFolderWalker.RealPath(root)))
                throw new ArgumentException($"The cache folder {cache} is inside the image folder {Path.GetFullPath(root)}: its synthetic images would be read as training images. Choose a CacheFolder outside it.");
            IReadOnlyList<SyntheticImage> synthetic;
            IReadOnlyList<GenerationFailure> failures;
            using (var augmenter = new DiffIIAugmenter(generator, augmentation, cache))
            {
                try { synthetic = augmenter.Run(images, o.Progress, o.CancellationToken); }
                catch (Imaging.ImageDecodeException e) when (describe.TryGetValue(e.ImageSource, out var where))
                {
                    // The method knows images by id; an ML.NET user knows them by row, column and file.
                    throw new Imaging.ImageDecodeException(where, e.Reason, e);
                }
                failures = augmenter.Failures.ToList();
            }
            // Diff-Mix soft labels become one row per label, sharing the image (and its sample id, which makes the rows
            // one synthetic group), each weighted by its label's weight.
            var rows = synthetic.SelectMany(s => s.Labels.Select(l => new DiffIIAugmentState.Row(l.ClassName, s.Provenance.File, l.Weight, s.Id))).ToList();
            var state = new DiffIIAugmentState
            {
                LabelColumnName = o.LabelColumnName,
                ImageColumnName = o.ImageColumnName,
                IsSyntheticColumnName = o.IsSyntheticColumnName,
                WeightColumnName = o.WeightColumnName,
                SyntheticGroupColumnName = o.SyntheticGroupColumnName,
                Rows = rows,
                Failures = failures.Select(f => $"{f.SampleId}: {f.Reason}").ToList(),
                SkippedRows = skipped,
            };
            state.Save(cache);
            return new DiffIIAugmentTransformer(state, cache);
        }
        finally
        {
            if (o.Generator is null) generator.Dispose();
        }
    }

    /// <summary>
    /// One <see cref="LabeledImage"/> per row with a class. Ids are the row index plus the path (path columns) or a
    /// hash of the content, so they are unique and the same for the same data. Also returns, per id, how errors name
    /// the image: its row, column and file.
    /// </summary>
    (List<LabeledImage> Images, Dictionary<string, string> Describe, long Skipped) ReadImages(IDataView input, LabelCodec label, ImageColumnKind kind)
    {
        var imageColumn = input.Schema[Options.ImageColumnName];
        var images = new List<LabeledImage>();
        var describe = new Dictionary<string, string>(StringComparer.Ordinal);
        long skipped = 0;
        string Where(long row) => $"row {row} of the image column '{imageColumn.Name}'";
        using var cursor = input.GetRowCursor([label.Column, imageColumn]);
        var readLabel = label.Reader(cursor);
        long row = -1;
        switch (kind)
        {
            case ImageColumnKind.Path:
            {
                var getter = cursor.GetGetter<ReadOnlyMemory<char>>(imageColumn);
                ReadOnlyMemory<char> value = default;
                while (cursor.MoveNext())
                {
                    row++;
                    if (readLabel() is not string className) { skipped++; continue; }
                    getter(ref value);
                    string path = value.ToString();
                    if (path.Length == 0) throw new InvalidDataException($"Row {row} of the image column '{imageColumn.Name}' has an empty path.");
                    string full = Path.GetFullPath(Path.Combine(Options.ImageFolder ?? "", path));
                    if (!File.Exists(full))
                        throw new FileNotFoundException($"Row {row} of the image column '{imageColumn.Name}': the image {full} does not exist" +
                                                        (Options.ImageFolder is null && !Path.IsPathRooted(path) ? " (relative paths resolve against ImageFolder, which is not set)." : "."), full);
                    // A FIFO or a device named like an image would block or never end when read: only regular files are opened.
                    if (DiffII.Storage.FileKind.Of(full) is var fileKind && fileKind != DiffII.Storage.FileKindValue.Regular)
                        throw new InvalidDataException($"Row {row} of the image column '{imageColumn.Name}': {full} is {DiffII.Storage.FileKind.Describe(fileKind)}, not a regular file; it is not read.");
                    images.Add(new LabeledImage($"{row:D6}-{path.Replace('\\', '/')}", className, () => File.ReadAllBytes(full)));
                    describe[images[^1].Id] = $"{Where(row)} ({full})";
                }
                break;
            }
            case ImageColumnKind.Bytes:
            {
                var getter = cursor.GetGetter<VBuffer<byte>>(imageColumn);
                VBuffer<byte> value = default;
                while (cursor.MoveNext())
                {
                    row++;
                    if (readLabel() is not string className) { skipped++; continue; }
                    getter(ref value);
                    byte[] bytes = value.DenseValues().ToArray();
                    if (bytes.Length == 0) throw new InvalidDataException($"Row {row} of the image column '{imageColumn.Name}' holds no bytes.");
                    images.Add(new LabeledImage(ContentId(row, bytes), className, () => bytes));
                    describe[images[^1].Id] = Where(row);
                }
                break;
            }
            default:
            {
                var getter = cursor.GetGetter<MLImage>(imageColumn);
                MLImage? value = null;
                while (cursor.MoveNext())
                {
                    row++;
                    if (readLabel() is not string className) { skipped++; continue; }
                    getter(ref value!);
                    if (value is null) throw new InvalidDataException($"Row {row} of the image column '{imageColumn.Name}' holds no image.");
                    byte[] png = EncodePng(value);
                    images.Add(new LabeledImage(ContentId(row, png), className, () => png));
                    describe[images[^1].Id] = Where(row);
                }
                break;
            }
        }
        if (images.Count == 0) throw new InvalidDataException($"The input has no row with a class in '{label.Column.Name}'; there is nothing to augment.");
        return (images, describe, skipped);
    }

    static string ContentId(long row, byte[] bytes) => $"{row:D6}-{Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]}";

    /// <summary>An MLImage's pixels as a PNG (lossless, so the method sees exactly the loaded pixels).</summary>
    internal static byte[] EncodePng(MLImage image)
    {
        if (image.PixelFormat is not (MLPixelFormat.Bgra32 or MLPixelFormat.Rgba32))
            throw new NotSupportedException($"MLImage pixel format {image.PixelFormat} is not supported; expected Bgra32 or Rgba32.");
        // MLImage builds its bitmaps with SkiaSharp's default (premultiplied) alpha; describe the pixels the same way.
        var info = new SKImageInfo(image.Width, image.Height,
            image.PixelFormat == MLPixelFormat.Bgra32 ? SKColorType.Bgra8888 : SKColorType.Rgba8888, SKAlphaType.Premul);
        using var copy = SKImage.FromPixelCopy(info, image.Pixels, info.RowBytes)
                         ?? throw new InvalidOperationException($"The pixels of a {image.Width}×{image.Height} image could not be read.");
        using var data = copy.Encode(SKEncodedImageFormat.Png, 100)
                         ?? throw new InvalidOperationException($"A {image.Width}×{image.Height} image could not be encoded as PNG.");
        return data.ToArray();
    }

    /// <summary>
    /// <c>{temp}/diffii-mlnet/{hash}</c>, the hash over everything that shapes the synthetic images except the budget:
    /// sample k of a class is the same for any budget, so a larger budget reuses the images a smaller one made.
    /// </summary>
    static string DefaultCacheFolder(IReadOnlyList<LabeledImage> images, StableDiffusion generator, DiffIIAugmentOptions o)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var image in images.OrderBy(i => i.Id, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(image.Id + "\n" + image.Label + "\n"));
            hash.AppendData(SHA256.HashData(image.ReadBytes()));
        }
        string model = o.GeneratorPath is not null ? Path.GetFullPath(o.GeneratorPath) : generator.Source;
        string settings = JsonSerializer.Serialize(new
        {
            model, o.Metaclass, Strategy = o.Strategy.Name(), o.SplitRatio, o.Suffixes, o.Seed, o.Concepts, o.Inversion, o.Generation, o.Resolution,
            Device = o.Generator is null ? o.Device : generator.Device.ToString(), DType = generator.DType.ToString(),
        });
        hash.AppendData(Encoding.UTF8.GetBytes(settings));
        return Path.Combine(Path.GetTempPath(), "diffii-mlnet", Convert.ToHexStringLower(hash.GetHashAndReset())[..20]);
    }
}

/// <summary>
/// A fitted Diff-II augmenter: the list of synthetic rows (class, PNG in the cache folder, weight, image group).
/// <c>Transform</c> returns the input rows followed by the synthetic rows (<see cref="AugmentedDataView"/>), with the
/// IsSynthetic, weight and synthetic group columns added. Nothing is generated here; every cursor reads the same rows.
/// </summary>
/// <remarks>
/// <para>Diff-Mix soft labels: a sample labelled (1 − w) for class a and w for class b becomes two rows sharing the
/// image, one per class, weighted 1 − w and w. A trainer minimising the example-weighted cross-entropy then adds
/// (1 − w)(−log p_a) + w(−log p_b) for the image, which is exactly the soft-label cross-entropy −Σ_k y_k log p_k.
/// Use the weight column as the trainer's example weight for this to hold. Both rows carry the same synthetic group
/// number (the image's), so replacement mixing draws them together as one image.</para>
/// <para>This transformer is not part of a scoring model: <c>IsRowToRowMapper</c> is false, and saving it (alone or in a
/// chain) throws. Append it with <see cref="TransformerScope.Training"/> and save <c>model.GetModelFor(TransformerScope.Scoring)</c>.
/// To reuse the fitted rows later, keep the cache folder (or <see cref="SaveState"/> elsewhere) and call <see cref="LoadFrom"/>.</para>
/// </remarks>
public sealed class DiffIIAugmentTransformer : ITransformer
{
    readonly DiffIIAugmentState _state;

    internal DiffIIAugmentTransformer(DiffIIAugmentState state, string folder)
    {
        _state = state;
        CacheFolder = folder;
        // One group per sample: the rows of a Diff-Mix image share its sample id. Groups are numbered 1, 2, ... in order.
        var groups = new Dictionary<string, uint>(StringComparer.Ordinal);
        SyntheticRows = state.Rows.Select(r =>
        {
            if (!groups.TryGetValue(r.SampleId, out uint group)) groups[r.SampleId] = group = checked((uint)groups.Count + 1);
            return new SyntheticRowValue(r.ClassName, Path.GetFullPath(Path.Combine(folder, r.File)), r.Weight, group);
        }).ToList();
    }

    /// <summary>The folder holding the synthetic images and the state file.</summary>
    public string CacheFolder { get; }
    public string LabelColumnName => _state.LabelColumnName;
    public string ImageColumnName => _state.ImageColumnName;
    public string IsSyntheticColumnName => _state.IsSyntheticColumnName;
    public string WeightColumnName => _state.WeightColumnName;
    public string SyntheticGroupColumnName => _state.SyntheticGroupColumnName;

    /// <summary>The rows <c>Transform</c> appends, in order (a Diff-Mix image appears once per label, its rows in one group).</summary>
    public IReadOnlyList<SyntheticRowValue> SyntheticRows { get; }

    /// <summary>Samples the generator could not make (e.g. a NaN latent); they have no rows.</summary>
    public IReadOnlyList<string> Failures => _state.Failures;

    /// <summary>Input rows left out of augmentation because their label is a missing key (no class), as ML.NET trainers leave them out.</summary>
    public long SkippedRows => _state.SkippedRows;

    /// <summary>False: the output has more rows than the input.</summary>
    public bool IsRowToRowMapper => false;

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        ColumnKinds.Label(inputSchema, LabelColumnName);
        ColumnKinds.DetectImage(inputSchema, ImageColumnName);
        if (inputSchema[ImageColumnName].Type is ImageDataViewType image) DiffIIAugmentEstimator.CheckUnsized(ImageColumnName, image);
        var builder = new DataViewSchema.Builder();
        foreach (var column in inputSchema)
        {
            if (column.Name == IsSyntheticColumnName || column.Name == WeightColumnName || column.Name == SyntheticGroupColumnName)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The input already has a column '{column.Name}'; choose another name for DiffIIAugment's output column.");
            builder.AddColumn(column.Name, column.Type, column.Annotations);
        }
        builder.AddColumn(IsSyntheticColumnName, BooleanDataViewType.Instance);
        builder.AddColumn(WeightColumnName, NumberDataViewType.Single);
        builder.AddColumn(SyntheticGroupColumnName, NumberDataViewType.UInt32);
        return builder.ToSchema();
    }

    /// <summary>The input rows followed by the synthetic rows, their label and image in the input's own column kinds.</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Schema[ImageColumnName] is { Type: ImageDataViewType image }) DiffIIAugmentEstimator.CheckUnsized(ImageColumnName, image);
        var view = new AugmentedDataView(input, LabelColumnName, ImageColumnName, SyntheticRows, IsSyntheticColumnName, WeightColumnName, SyntheticGroupColumnName);
        // Fail now, not in the middle of a trainer's pass, when a class cannot be written in this input's label column.
        var codec = ColumnKinds.Label(input.Schema, LabelColumnName);
        foreach (var className in SyntheticRows.Select(r => r.ClassName).Distinct())
        {
            try { codec.Value(className); }
            catch (Exception e) when (e is KeyNotFoundException or FormatException or OverflowException)
            {
                throw new InvalidOperationException(
                    $"The synthetic class '{className}' cannot be written in the label column '{LabelColumnName}' ({codec.Type}) of this input: " +
                    "its key values or type differ from the data DiffIIAugment was fitted on.", e);
            }
        }
        return view;
    }

    /// <summary>Not supported: appending rows is not a row-to-row mapping, and scoring never needs the augmenter.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) =>
        throw new NotSupportedException(
            "DiffIIAugment adds training rows, so it cannot map rows one to one (prediction engines, scoring). Append it with " +
            "TransformerScope.Training (pipeline.Append(augment, TransformerScope.Training), or augment.TrainingOnly()), and score with " +
            "model.GetModelFor(TransformerScope.Scoring), which leaves it out.");

    /// <summary>
    /// Always throws: ML.NET saves every transformer of a chain, whatever its scope, and a model file has no place for
    /// generated images. Save <c>model.GetModelFor(TransformerScope.Scoring)</c> instead.
    /// </summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException(
            "DiffIIAugment cannot be saved in an ML.NET model: it only adds training rows, and ML.NET saves every transformer of a chain, " +
            "training-only ones included. Append it with TransformerScope.Training (pipeline.Append(augment, TransformerScope.Training), or " +
            "augment.TrainingOnly()) and save model.GetModelFor(TransformerScope.Scoring), which leaves it out. To reuse the fitted augmenter, " +
            $"keep its cache folder ({CacheFolder}) or call SaveState(folder), then DiffIIAugmentTransformer.LoadFrom(folder).");

    /// <summary>
    /// Writes everything this augmenter was fitted from and produced (concepts, inversion pools, synthetic images,
    /// manifest and the state file) to <paramref name="folder"/>, so <see cref="LoadFrom"/> works there and a refit
    /// pointed at it as its cache folder reuses the work. Saving to the cache folder itself just rewrites the state file.
    /// </summary>
    public void SaveState(string folder)
    {
        string target = Path.GetFullPath(folder);
        if (string.Equals(target.TrimEnd(Path.DirectorySeparatorChar), CacheFolder.TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal))
        {
            _state.Save(CacheFolder);
            return;
        }
        if (target.StartsWith(CacheFolder.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"Cannot save the state inside its own cache folder ({CacheFolder}); choose another folder.", nameof(folder));
        foreach (var file in Directory.EnumerateFiles(CacheFolder, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(CacheFolder, file);
            // The lock belongs to whoever runs in the cache folder; the state file is written last, below.
            if (relative is ".lock" or ".lock.owner" or DiffIIAugmentEstimator.StateFileName) continue;
            string destination = Path.Combine(target, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination, overwrite: true);
        }
        _state.Save(target);
    }

    /// <summary>
    /// The augmenter fitted into <paramref name="folder"/> (a cache folder, or a folder written by <see cref="SaveState"/>),
    /// without the generator or the training data. Every synthetic image it lists must be there.
    /// </summary>
    public static DiffIIAugmentTransformer LoadFrom(string folder)
    {
        string root = Path.GetFullPath(folder);
        var state = DiffIIAugmentState.Load(root);
        var missing = state.Rows.Select(r => Path.Combine(root, r.File)).FirstOrDefault(p => !File.Exists(p));
        if (missing is not null)
            throw new FileNotFoundException($"{Path.Combine(root, DiffIIAugmentEstimator.StateFileName)} lists the synthetic image {missing}, which is missing.", missing);
        return new DiffIIAugmentTransformer(state, root);
    }
}

/// <summary>What a fitted augmenter is: its columns and its synthetic rows, with image paths relative to the folder.</summary>
sealed record DiffIIAugmentState
{
    public sealed record Row(
        [property: JsonPropertyName("class")] string ClassName,
        [property: JsonPropertyName("file")] string File,
        [property: JsonPropertyName("weight")] float Weight,
        [property: JsonPropertyName("sample")] string SampleId);

    [JsonPropertyName("format")] public int Format { get; init; } = 1;
    [JsonPropertyName("label_column")] public required string LabelColumnName { get; init; }
    [JsonPropertyName("image_column")] public required string ImageColumnName { get; init; }
    [JsonPropertyName("is_synthetic_column")] public required string IsSyntheticColumnName { get; init; }
    [JsonPropertyName("weight_column")] public required string WeightColumnName { get; init; }
    // Not required: state files written before synthetic groups existed load with the default name.
    [JsonPropertyName("synthetic_group_column")] public string SyntheticGroupColumnName { get; init; } = "SyntheticGroup";
    [JsonPropertyName("rows")] public required IReadOnlyList<Row> Rows { get; init; }
    [JsonPropertyName("failures")] public IReadOnlyList<string> Failures { get; init; } = [];
    [JsonPropertyName("skipped_rows")] public long SkippedRows { get; init; }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.WriteAllText(Path.Combine(folder, DiffIIAugmentEstimator.StateFileName), JsonSerializer.Serialize(this, Json));
    }

    public static DiffIIAugmentState Load(string folder)
    {
        string path = Path.Combine(folder, DiffIIAugmentEstimator.StateFileName);
        if (!System.IO.File.Exists(path))
            throw new FileNotFoundException($"{path} does not exist: {folder} holds no fitted DiffIIAugment (fit one with this cache folder, or SaveState to it).", path);
        try
        {
            var state = JsonSerializer.Deserialize<DiffIIAugmentState>(System.IO.File.ReadAllText(path), Json)
                        ?? throw new InvalidDataException($"{path} is empty.");
            if (state.Format != 1) throw new InvalidDataException($"{path} has format {state.Format}; this version reads format 1.");
            return state;
        }
        catch (JsonException e) { throw new InvalidDataException($"{path} is not a DiffIIAugment state file: {e.Message}", e); }
    }
}
