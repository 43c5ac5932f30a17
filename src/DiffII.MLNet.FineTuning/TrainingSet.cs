using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.FineTuning;

/// <summary>
/// The training images held in memory (decoded once, [3, S, S] bytes in B, G, R order) with their soft targets, and
/// the paper's per-epoch replacement schedule over them.
/// </summary>
/// <remarks>
/// <para>One example per image: an original row is an image with a one-hot target times its weight; a synthetic image
/// is all rows sharing a <c>SyntheticGroup</c> number, its target the sum of weight × one-hot over its rows (Diff-Mix's
/// soft labels), trained with soft-label cross-entropy.</para>
/// <para><see cref="PlanForEpoch"/> draws exactly as <c>ReplacementMixingDataView.PlanForPass</c> in DiffII.MLNet: per
/// original, in source order, one uniform number and one pick; with probability p the original is replaced by a synthetic
/// image of its class (the class of the image's largest weight, ties to the earlier row), picked uniformly among that
/// class's images in order of their first row. Epoch e is pass e, so the same seed gives the same mix.</para>
/// <para>Rows whose label is a missing key (0) are skipped, as ML.NET trainers skip them; the mixing view would still
/// yield such an original, so with missing labels the two draws are no longer row for row the same.</para>
/// </remarks>
public sealed class TrainingSet
{
    public int ImageSize { get; }
    public int NumClasses { get; }
    public IReadOnlyList<byte[]> Pixels => _pixels;
    public IReadOnlyList<float[]> Targets => _targets;
    /// <summary>Example index of every original, in source order.</summary>
    public IReadOnlyList<int> Originals => _originals;
    /// <summary>Synthetic example indices that can replace an original of each class (0-based class).</summary>
    public IReadOnlyDictionary<int, List<int>> SyntheticByClass => _byClass;
    /// <summary>The source rows behind each example (one for originals, one per label for a soft-labelled image).</summary>
    public IReadOnlyList<long[]> SourceRows => _rows;
    public int SkippedMissingLabels { get; private set; }

    readonly List<byte[]> _pixels = [];
    readonly List<float[]> _targets = [];
    readonly List<long[]> _rows = [];
    readonly List<int> _originals = [];
    readonly List<int> _originalClass = [];
    readonly Dictionary<int, List<int>> _byClass = [];

    TrainingSet(int imageSize, int numClasses) { ImageSize = imageSize; NumClasses = numClasses; }

    /// <summary>Reads <paramref name="pixels"/> (the input after <see cref="ImageColumns.ToPixels"/>).</summary>
    public static TrainingSet Read(IDataView pixels, ResNet18FineTuneOptions options, int numClasses, CancellationToken cancel)
    {
        var schema = pixels.Schema;
        var set = new TrainingSet(options.ImageSize, numClasses);
        var label = schema[options.LabelColumnName];
        var pixelColumn = schema[ImageColumns.PixelsColumn];
        var isSynthetic = Optional(schema, options.IsSyntheticColumnName, BooleanDataViewType.Instance, "Boolean");
        var group = isSynthetic is null ? null : Optional(schema, options.SyntheticGroupColumnName, NumberDataViewType.UInt32, "UInt32");
        var weight = Optional(schema, options.ExampleWeightColumnName, NumberDataViewType.Single, "Single");
        var columns = new List<DataViewSchema.Column> { label, pixelColumn };
        foreach (var c in new[] { isSynthetic, group, weight }) if (c is { } present) columns.Add(present);

        using var cursor = pixels.GetRowCursor(columns);
        var readLabel = cursor.GetGetter<uint>(label);
        var readPixels = cursor.GetGetter<VBuffer<float>>(pixelColumn);
        ValueGetter<bool>? readSynthetic = isSynthetic is { } s ? cursor.GetGetter<bool>(s) : null;
        ValueGetter<uint>? readGroup = group is { } g ? cursor.GetGetter<uint>(g) : null;
        ValueGetter<float>? readWeight = weight is { } wc ? cursor.GetGetter<float>(wc) : null;
        var exampleOfGroup = new Dictionary<uint, int>();
        var bestWeight = new Dictionary<int, (float Weight, int Class)>();
        VBuffer<float> buffer = default;
        long row = -1;
        while (cursor.MoveNext())
        {
            row++;
            cancel.ThrowIfCancellationRequested();
            uint key = 0; readLabel(ref key);
            bool synthetic = false; readSynthetic?.Invoke(ref synthetic);
            uint groupNumber = 0; readGroup?.Invoke(ref groupNumber);
            float w = 1f; readWeight?.Invoke(ref w);
            if (!(w >= 0) || float.IsPositiveInfinity(w))
                throw new InvalidDataException($"Row {row} has weight {w} in '{options.ExampleWeightColumnName}'; example weights must be finite and at least 0.");
            if (key == 0 || key > numClasses) { set.SkippedMissingLabels++; continue; }
            int cls = (int)key - 1;
            if (!synthetic && groupNumber != 0)
                throw new InvalidDataException($"Row {row} is an original ('{options.IsSyntheticColumnName}' false) but its synthetic group '{options.SyntheticGroupColumnName}' is {groupNumber}; originals have group 0.");
            if (synthetic && group is not null && groupNumber != 0 && exampleOfGroup.TryGetValue(groupNumber, out int known))
            {
                // Another label of an image already read: add its weight to the image's soft target.
                set._targets[known][cls] += w;
                set._rows[known] = [.. set._rows[known], row];
                if (w > bestWeight[known].Weight) bestWeight[known] = (w, cls);
                continue;
            }
            if (synthetic && group is not null && groupNumber == 0)
                throw new InvalidDataException($"Row {row} is synthetic but its synthetic group '{options.SyntheticGroupColumnName}' is 0; every synthetic row needs the number of its image.");

            readPixels(ref buffer);
            if (buffer.Length != 3 * options.ImageSize * options.ImageSize)
                throw new InvalidDataException($"Row {row}: the image in '{options.ImageColumnName}' gave {buffer.Length} pixel values; expected {3 * options.ImageSize * options.ImageSize}.");
            var bytes = new byte[buffer.Length];
            var values = buffer.GetValues();
            for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)Math.Clamp(MathF.Round(values[i]), 0, 255);
            var target = new float[numClasses];
            target[cls] = w;
            int index = set._pixels.Count;
            set._pixels.Add(bytes);
            set._targets.Add(target);
            set._rows.Add([row]);
            if (!synthetic)
            {
                set._originals.Add(index);
                set._originalClass.Add(cls);
            }
            else
            {
                if (groupNumber != 0) exampleOfGroup[groupNumber] = index;
                bestWeight[index] = (w, cls);
            }
        }
        foreach (var (example, best) in bestWeight.OrderBy(p => p.Key))
        {
            if (!set._byClass.TryGetValue(best.Class, out var pool)) set._byClass[best.Class] = pool = [];
            pool.Add(example);
        }
        if (set._originals.Count == 0)
            throw new InvalidDataException($"The training data has no original rows with a label in '{options.LabelColumnName}'" +
                                           (set.SkippedMissingLabels > 0 ? $" ({set.SkippedMissingLabels} rows have a missing key)." : "."));
        return set;
    }

    static DataViewSchema.Column? Optional(DataViewSchema schema, string? name, DataViewType type, string typeName)
    {
        if (name is null || schema.GetColumnOrNull(name) is not { } column) return null;
        if (!column.Type.Equals(type))
            throw new ArgumentOutOfRangeException(nameof(name), $"The column '{name}' has type {column.Type}; it must be {typeName} (as DiffIIAugment writes it).");
        return column;
    }

    /// <summary>The examples epoch <paramref name="epoch"/> trains on (before shuffling); <paramref name="heldOut"/> originals draw but are left out.</summary>
    public List<int> PlanForEpoch(int epoch, double probability, int seed, IReadOnlySet<int>? heldOut = null)
    {
        var random = new Random(unchecked(seed * 7919 + epoch * 104729 + 17));
        var plan = new List<int>(_originals.Count);
        for (int i = 0; i < _originals.Count; i++)
        {
            // Both numbers for every original, as ReplacementMixingDataView draws them, so the schedules agree row for row.
            double u = random.NextDouble();
            int pick = random.Next(int.MaxValue);
            if (heldOut is not null && heldOut.Contains(_originals[i])) continue;
            if (u < probability && _byClass.TryGetValue(_originalClass[i], out var pool))
                plan.Add(pool[pick % pool.Count]);
            else
                plan.Add(_originals[i]);
        }
        return plan;
    }

    /// <summary>The 0-based class of an original example.</summary>
    public int ClassOfOriginal(int position) => _originalClass[position];
}
