using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace DiffII.MLNet.Data;

/// <summary>The three ways ML.NET users hold images in a column.</summary>
public enum ImageColumnKind
{
    /// <summary>An <see cref="MLImage"/> (after <c>LoadImages</c>).</summary>
    MLImage,
    /// <summary>A file path (text), as before <c>LoadImages</c>; relative paths resolve against the image folder.</summary>
    Path,
    /// <summary>Encoded image bytes (a byte vector, as <c>LoadRawImageBytes</c> makes).</summary>
    Bytes,
}

/// <summary>Schema checks whose errors name the column, its type, and what would fit.</summary>
public static class ColumnKinds
{
    public static DataViewSchema.Column Find(DataViewSchema schema, string name, string role)
    {
        var column = schema.GetColumnOrNull(name);
        if (column is null)
            throw new ArgumentOutOfRangeException(nameof(name),
                $"The {role} column '{name}' is not in the input. Columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"{c.Name} ({c.Type})"))}.");
        return column.Value;
    }

    public static ImageColumnKind DetectImage(DataViewSchema schema, string name)
    {
        var column = Find(schema, name, "image");
        return column.Type switch
        {
            ImageDataViewType => ImageColumnKind.MLImage,
            TextDataViewType => ImageColumnKind.Path,
            VectorDataViewType v when v.ItemType == NumberDataViewType.Byte && v.Size == 0 => ImageColumnKind.Bytes,
            _ => throw new ArgumentOutOfRangeException(nameof(name),
                $"The image column '{name}' has type {column.Type}; DiffIIAugment needs an image (LoadImages), " +
                "a path (String, before LoadImages) or encoded bytes (LoadRawImageBytes: a variable-length Byte vector)."),
        };
    }

    /// <summary>Checks the label column can be read as a class and returns the codec that reads and writes it.</summary>
    public static LabelCodec Label(DataViewSchema schema, string name)
    {
        var column = Find(schema, name, "label");
        return column.Type switch
        {
            TextDataViewType => new TextLabelCodec(column),
            KeyDataViewType key when key.RawType == typeof(uint) => new KeyLabelCodec(column),
            NumberDataViewType n when n.RawType == typeof(int) => new NumberLabelCodec<int>(column),
            NumberDataViewType n when n.RawType == typeof(long) => new NumberLabelCodec<long>(column),
            NumberDataViewType n when n.RawType == typeof(uint) => new NumberLabelCodec<uint>(column),
            NumberDataViewType n when n.RawType == typeof(short) => new NumberLabelCodec<short>(column),
            NumberDataViewType n when n.RawType == typeof(byte) => new NumberLabelCodec<byte>(column),
            _ => throw new ArgumentOutOfRangeException(nameof(name),
                $"The label column '{name}' has type {column.Type}; DiffIIAugment needs a class label: String, a key (MapValueToKey) " +
                "or an integer type. For a floating-point label, map it to a key first."),
        };
    }
}

/// <summary>Reads a label value as a class name, and writes a class name back as a value of the column's own type.</summary>
public abstract class LabelCodec(DataViewSchema.Column column)
{
    public DataViewSchema.Column Column { get; } = column;
    public DataViewType Type => Column.Type;

    /// <summary>A getter that returns the current row's class name (or null for a missing key, which is skipped).</summary>
    public abstract Func<string?> Reader(DataViewRow row);

    /// <summary>A value of the column's raw type (boxed) for <paramref name="className"/>.</summary>
    public abstract object Value(string className);
}

sealed class TextLabelCodec(DataViewSchema.Column column) : LabelCodec(column)
{
    public override Func<string?> Reader(DataViewRow row)
    {
        var getter = row.GetGetter<ReadOnlyMemory<char>>(Column);
        return () => { ReadOnlyMemory<char> v = default; getter(ref v); return v.ToString(); };
    }
    public override object Value(string className) => className.AsMemory();
}

sealed class KeyLabelCodec : LabelCodec
{
    readonly string[]? _names;
    readonly Dictionary<string, uint>? _byName;

    public KeyLabelCodec(DataViewSchema.Column column) : base(column)
    {
        if (column.HasKeyValues())
        {
            VBuffer<ReadOnlyMemory<char>> values = default;
            column.GetKeyValues(ref values);
            _names = values.DenseValues().Select(v => v.ToString()).ToArray();
            _byName = _names.Select((n, i) => (n, i)).GroupBy(p => p.n).ToDictionary(g => g.Key, g => (uint)(g.First().i + 1));
        }
    }

    public override Func<string?> Reader(DataViewRow row)
    {
        var getter = row.GetGetter<uint>(Column);
        return () =>
        {
            uint key = 0; getter(ref key);
            if (key == 0) return null; // a missing key: no class
            return _names is not null && key <= _names.Length ? _names[key - 1] : key.ToString(System.Globalization.CultureInfo.InvariantCulture);
        };
    }

    public override object Value(string className) =>
        _byName is not null ? _byName[className] : uint.Parse(className, System.Globalization.CultureInfo.InvariantCulture);
}

sealed class NumberLabelCodec<T>(DataViewSchema.Column column) : LabelCodec(column)
    where T : struct, IFormattable, IParsable<T>
{
    public override Func<string?> Reader(DataViewRow row)
    {
        var getter = row.GetGetter<T>(Column);
        return () => { T v = default; getter(ref v); return v.ToString(null, System.Globalization.CultureInfo.InvariantCulture); };
    }
    public override object Value(string className) => T.Parse(className, System.Globalization.CultureInfo.InvariantCulture);
}
