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
    public string ExampleWeightColumnName => _state.ExampleWeightColumnName;
    public string SyntheticGroupColumnName => _state.SyntheticGroupColumnName;

    /// <summary>The rows <c>Transform</c> appends, in order (a Diff-Mix image appears once per label, its rows in one group).</summary>
    public IReadOnlyList<SyntheticRowValue> SyntheticRows { get; }

    /// <summary>Samples the generator could not make (e.g. a NaN latent); they have no rows.</summary>
    public IReadOnlyList<string> Failures => _state.Failures;
    /// <summary>What worked but is probably not what was meant (a prompt suffix cut off at the text encoder's length).</summary>
    public IReadOnlyList<string> Warnings => _state.Warnings;

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
            if (column.Name == IsSyntheticColumnName || column.Name == ExampleWeightColumnName || column.Name == SyntheticGroupColumnName)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"The input already has a column '{column.Name}'; choose another name for DiffIIAugment's output column.");
            builder.AddColumn(column.Name, column.Type, column.Annotations);
        }
        builder.AddColumn(IsSyntheticColumnName, BooleanDataViewType.Instance);
        builder.AddColumn(ExampleWeightColumnName, NumberDataViewType.Single);
        builder.AddColumn(SyntheticGroupColumnName, NumberDataViewType.UInt32);
        return builder.ToSchema();
    }

    /// <summary>The input rows followed by the synthetic rows, their label and image in the input's own column kinds.</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Schema[ImageColumnName] is { Type: ImageDataViewType image }) DiffIIAugmentEstimator.CheckUnsized(ImageColumnName, image);
        var view = new AugmentedDataView(input, LabelColumnName, ImageColumnName, SyntheticRows, IsSyntheticColumnName, ExampleWeightColumnName, SyntheticGroupColumnName);
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
    [JsonPropertyName("weight_column")] public required string ExampleWeightColumnName { get; init; }
    // Not required: state files written before synthetic groups existed load with the default name.
    [JsonPropertyName("synthetic_group_column")] public string SyntheticGroupColumnName { get; init; } = "SyntheticGroup";
    [JsonPropertyName("rows")] public required IReadOnlyList<Row> Rows { get; init; }
    [JsonPropertyName("failures")] public IReadOnlyList<string> Failures { get; init; } = [];
    [JsonPropertyName("warnings")] public IReadOnlyList<string> Warnings { get; init; } = [];
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
