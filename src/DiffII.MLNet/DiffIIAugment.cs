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

    readonly IProgress<AugmentationProgress>? _progress;
    readonly CancellationToken _cancellationToken;

    /// <param name="options">What to augment and how (settings only; the options record holds no live objects).</param>
    /// <param name="generator">An already loaded model, used as is and never disposed (the caller owns it), instead of
    /// <see cref="DiffIIAugmentOptions.GeneratorPath"/>. While fitting, the learned tokens are added to it and its LoRA
    /// merged; the LoRA is taken off again afterwards.</param>
    /// <param name="progress">Reports of Fit's stages (learn, invert, generate).</param>
    /// <param name="cancellationToken">Stops Fit at the next step; a Fit with the same cache folder resumes there.</param>
    public DiffIIAugmentEstimator(DiffIIAugmentOptions options, StableDiffusion? generator = null,
        IProgress<AugmentationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if ((options.GeneratorPath is null) == (generator is null))
            throw new ArgumentException(generator is null
                ? "DiffIIAugment needs a generator: set GeneratorPath (a Stable Diffusion folder) or pass a loaded StableDiffusion."
                : "Set GeneratorPath or pass a loaded generator, not both.");
        options.Validate();
        Options = options;
        Generator = generator;
        _progress = progress;
        _cancellationToken = cancellationToken;
    }

    public DiffIIAugmentOptions Options { get; }

    /// <summary>The loaded model given to the constructor, or null when <see cref="DiffIIAugmentOptions.GeneratorPath"/> is loaded for each Fit.</summary>
    public StableDiffusion? Generator { get; }

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

    // SchemaShape.Column has no public constructor and SchemaShape.Create is internal to ML.NET, as is the catalog's
    // environment; a custom mapping's output schema is the public way to make the columns. This context does nothing else.
    static readonly MLContext SchemaContext = new();

    IEnumerable<SchemaShape.Column> AddedColumns()
    {
        var output = SchemaDefinition.Create(typeof(AddedRow));
        output[nameof(AddedRow.IsSynthetic)].ColumnName = Options.IsSyntheticColumnName;
        output[nameof(AddedRow.SampleWeight)].ColumnName = Options.ExampleWeightColumnName;
        output[nameof(AddedRow.SyntheticGroup)].ColumnName = Options.SyntheticGroupColumnName;
        return SchemaContext.Transforms.CustomMapping<NoColumns, AddedRow>((_, _) => { }, contractName: null, outputSchemaDefinition: output)
            .GetOutputSchema(new SchemaShape([]));
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
        var generator = Generator ?? StableDiffusion.Load(o.GeneratorPath!, new StableDiffusionLoadOptions { Device = TorchSharp.torch.device(o.Device) });
        try
        {
            string cache = Path.GetFullPath(o.CacheFolder ?? DefaultCacheFolder(images, generator, o));
            // A cache inside the image folder would have its synthetic PNGs walked as training images next time.
            if (o.ImageFolder is string root && Directory.Exists(root)
                && DiffII.Imaging.ImageFolderWalker.IsWithin(DiffII.Imaging.ImageFolderWalker.RealPath(cache), DiffII.Imaging.ImageFolderWalker.RealPath(root)))
                throw new ArgumentException($"The cache folder {cache} is inside the image folder {Path.GetFullPath(root)}: its synthetic images would be read as training images. Choose a CacheFolder outside it.");
            IReadOnlyList<SyntheticImage> synthetic;
            IReadOnlyList<GenerationFailure> failures;
            IReadOnlyList<string> warnings;
            using (var augmenter = new DiffIIAugmenter(generator, augmentation, cache))
            {
                try { synthetic = augmenter.Run(images, _progress, _cancellationToken); }
                catch (Imaging.ImageDecodeException e) when (describe.TryGetValue(e.ImageSource, out var where))
                {
                    // The method knows images by id; an ML.NET user knows them by row, column and file.
                    throw new Imaging.ImageDecodeException(where, e.Reason, e);
                }
                failures = augmenter.Failures.ToList();
                warnings = augmenter.Warnings;
            }
            // Diff-Mix soft labels become one row per label, sharing the image (and its sample id, which makes the rows
            // one synthetic group), each weighted by its label's weight.
            var rows = synthetic.SelectMany(s => s.Labels.Select(l => new DiffIIAugmentState.Row(l.ClassName, s.Provenance.File, l.Weight, s.Id))).ToList();
            var state = new DiffIIAugmentState
            {
                LabelColumnName = o.LabelColumnName,
                ImageColumnName = o.ImageColumnName,
                IsSyntheticColumnName = o.IsSyntheticColumnName,
                ExampleWeightColumnName = o.ExampleWeightColumnName,
                SyntheticGroupColumnName = o.SyntheticGroupColumnName,
                Rows = rows,
                Failures = failures.Select(f => $"{f.SampleId}: {f.Reason}").ToList(),
                Warnings = warnings,
                SkippedRows = skipped,
            };
            state.Save(cache);
            return new DiffIIAugmentTransformer(state, cache);
        }
        finally
        {
            if (Generator is null) generator.Dispose();
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
                // The same file under two spellings (img/s1.png, ./img/s1.png, a link to it) would enter the inversion
                // pool twice, and a pair of the two is no interpolation: refused, as the CLI refuses it in a CSV.
                var rowOfFile = new Dictionary<string, long>(StringComparer.Ordinal);
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
                    string real = DiffII.Imaging.ImageFolderWalker.RealPath(full);
                    if (rowOfFile.TryGetValue(real, out long first))
                        throw new InvalidDataException($"Row {row} of the image column '{imageColumn.Name}' ({path}) is the file of row {first} ({real}) again; each image may appear once.");
                    rowOfFile[real] = row;
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
            Device = o.GeneratorPath is not null ? o.Device : generator.Device.ToString(), DType = generator.DType.ToString(),
        });
        hash.AppendData(Encoding.UTF8.GetBytes(settings));
        return Path.Combine(Path.GetTempPath(), "diffii-mlnet", Convert.ToHexStringLower(hash.GetHashAndReset())[..20]);
    }
}
