using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Data;

/// <summary>
/// One synthetic row to append: its class, the generated PNG on disk, its example weight, and the synthetic image it
/// is a label of.
/// </summary>
/// <param name="Group">
/// Which synthetic image the row belongs to: rows with the same nonzero group are the labels of one image (Diff-Mix's
/// soft labels, one weighted row per label) and are drawn together, as one unit, by replacement mixing. 0 means the
/// row is an image of its own (a hard label). Only equality matters; <see cref="AugmentedDataView"/> renumbers.
/// </param>
public sealed record SyntheticRowValue(string ClassName, string ImagePath, float Weight = 1f, uint Group = 0)
{
    /// <summary>
    /// The rows of <paramref name="images"/>: one per label of each image (weighted by the label's weight), and
    /// image k (from 0) in group k + 1, so a soft-labelled image's rows stay one unit.
    /// </summary>
    public static IReadOnlyList<SyntheticRowValue> FromImages(IEnumerable<SyntheticImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var rows = new List<SyntheticRowValue>();
        uint group = 0;
        foreach (var image in images)
        {
            group = checked(group + 1);
            if (image.Labels.Count == 0) throw new ArgumentException($"The synthetic image {image.Id} ({image.ImagePath}) has no labels.", nameof(images));
            foreach (var label in image.Labels) rows.Add(new SyntheticRowValue(label.ClassName, image.ImagePath, label.Weight, group));
        }
        return rows;
    }
}

/// <summary>
/// The input rows, unchanged, followed by synthetic rows that carry the same columns in the same kinds: the label
/// in the label column's own type, the image as an <see cref="MLImage"/>, a path, or encoded bytes like the input's
/// image column. Three columns are added: <c>IsSynthetic</c> (Boolean), a weight column (Single; 1 for real rows) and
/// a synthetic group column (UInt32; 0 for real rows, and 1, 2, ... numbering the synthetic images in order of first
/// appearance, so the rows of one soft-labelled image share a number). Other input columns hold their type's default
/// value in synthetic rows. Every cursor yields the same rows in the same order: the synthetic images are files, read
/// on demand, never regenerated.
/// </summary>
public sealed class AugmentedDataView : IDataView
{
    readonly IDataView _source;
    readonly IReadOnlyList<SyntheticRowValue> _synthetic;
    readonly uint[] _groups;
    readonly LabelCodec _label;
    readonly DataViewSchema.Column _image;
    readonly ImageColumnKind _imageKind;

    public AugmentedDataView(IDataView source, string labelColumn, string imageColumn, IReadOnlyList<SyntheticRowValue> synthetic,
        string isSyntheticColumn = "IsSynthetic", string weightColumn = "SampleWeight", string syntheticGroupColumn = "SyntheticGroup")
    {
        _source = source;
        _synthetic = synthetic;
        _label = ColumnKinds.Label(source.Schema, labelColumn);
        _imageKind = ColumnKinds.DetectImage(source.Schema, imageColumn);
        _image = source.Schema[imageColumn];
        string[] added = [isSyntheticColumn, weightColumn, syntheticGroupColumn];
        if (added.Distinct(StringComparer.Ordinal).Count() != added.Length)
            throw new ArgumentException($"The IsSynthetic, weight and synthetic group columns need three different names; got {string.Join(", ", added.Select(n => $"'{n}'"))}.");
        foreach (var name in added)
            if (source.Schema.GetColumnOrNull(name) is not null)
                throw new ArgumentException($"The input already has a column '{name}'; choose another name for DiffIIAugment's output column.");
        _groups = NumberGroups(synthetic);

        var builder = new DataViewSchema.Builder();
        foreach (var column in source.Schema)
            builder.AddColumn(column.Name, column.Type, column.Annotations);
        builder.AddColumn(isSyntheticColumn, BooleanDataViewType.Instance);
        builder.AddColumn(weightColumn, NumberDataViewType.Single);
        builder.AddColumn(syntheticGroupColumn, NumberDataViewType.UInt32);
        Schema = builder.ToSchema();
        IsSyntheticIndex = Schema.Count - 3;
        WeightIndex = Schema.Count - 2;
        GroupIndex = Schema.Count - 1;
    }

    /// <summary>
    /// The output group of each synthetic row: 1, 2, ... per image in order of first appearance. A group is one image,
    /// so its rows must hold the same image, and every row of an image must carry that image's group: rows of one image
    /// without a shared group would be drawn as separate, full images.
    /// </summary>
    static uint[] NumberGroups(IReadOnlyList<SyntheticRowValue> synthetic)
    {
        var groups = new uint[synthetic.Count];
        var firstRowOfImage = new Dictionary<string, int>(StringComparer.Ordinal);
        var firstRowOfGroup = new Dictionary<uint, int>();
        uint next = 0;
        for (int i = 0; i < synthetic.Count; i++)
        {
            var row = synthetic[i];
            if (firstRowOfImage.TryGetValue(row.ImagePath, out int first))
            {
                uint firstGroup = synthetic[first].Group;
                if (row.Group == 0 || firstGroup != row.Group)
                    throw new ArgumentException(
                        $"Synthetic rows {first} and {i} hold the same image {row.ImagePath} but " +
                        (row.Group == 0 && firstGroup == 0 ? "have no group (Group 0: an image of its own each)" : $"are in groups {firstGroup} and {row.Group} (0: none)") +
                        ". Give the rows of one image (e.g. Diff-Mix's soft labels) the same nonzero Group, so replacement mixing draws them together.");
                groups[i] = groups[first];
                continue;
            }
            if (row.Group != 0 && firstRowOfGroup.TryGetValue(row.Group, out int sameGroup))
                throw new ArgumentException(
                    $"Synthetic rows {sameGroup} and {i} are both in group {row.Group} but hold different images ({synthetic[sameGroup].ImagePath}, {row.ImagePath}); " +
                    "a group is the labels of one image.");
            firstRowOfImage[row.ImagePath] = i;
            if (row.Group != 0) firstRowOfGroup[row.Group] = i;
            groups[i] = next = checked(next + 1);
        }
        return groups;
    }

    public DataViewSchema Schema { get; }
    internal int IsSyntheticIndex { get; }
    internal int WeightIndex { get; }
    internal int GroupIndex { get; }
    public bool CanShuffle => false;
    public IReadOnlyList<SyntheticRowValue> SyntheticRows => _synthetic;

    public long? GetRowCount() => _source.GetRowCount() is long n ? n + _synthetic.Count : null;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
        new Cursor(this, columnsNeeded.Select(c => c.Index).ToHashSet());

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    sealed class Cursor : DataViewRowCursor
    {
        readonly AugmentedDataView _view;
        readonly HashSet<int> _active;
        readonly DataViewRowCursor _source;
        readonly ValueGetter<DataViewRowId> _sourceId;
        bool _inSource = true;
        int _syntheticIndex = -1;
        long _position = -1;
        // The current synthetic row's encoded image, read once per row whatever the number of getter calls.
        byte[]? _bytes;
        int _bytesFor = -1;

        public Cursor(AugmentedDataView view, HashSet<int> active)
        {
            _view = view;
            _active = active;
            var sourceColumns = view._source.Schema.Where(c => active.Contains(c.Index) || c.Index == view._label.Column.Index);
            _source = view._source.GetRowCursor(sourceColumns);
            _sourceId = _source.GetIdGetter();
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override bool MoveNext()
        {
            if (_inSource)
            {
                if (_source.MoveNext()) { _position++; return true; }
                _inSource = false;
            }
            if (_syntheticIndex + 1 >= _view._synthetic.Count) return false;
            _syntheticIndex++;
            _position++;
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) =>
        {
            if (_inSource) _sourceId(ref id);
            else id = new DataViewRowId((ulong)_syntheticIndex, 0xD1FF_11_5E_0000_0000UL); // a range no source row id uses
        };

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column)) throw new InvalidOperationException($"Column '{column.Name}' was not requested from this cursor.");
            if (column.Index == _view.IsSyntheticIndex) return Cast<bool, TValue>(column, (ref bool v) => v = !_inSource);
            if (column.Index == _view.WeightIndex) return Cast<float, TValue>(column, (ref float v) => v = _inSource ? 1f : Current.Weight);
            if (column.Index == _view.GroupIndex) return Cast<uint, TValue>(column, (ref uint v) => v = _inSource ? 0u : _view._groups[_syntheticIndex]);

            var sourceColumn = _view._source.Schema[column.Index];
            ValueGetter<TValue>? fromSource = null;
            ValueGetter<TValue> synthetic = SyntheticGetter<TValue>(column);
            return (ref TValue value) =>
            {
                if (_inSource) (fromSource ??= _source.GetGetter<TValue>(sourceColumn))(ref value);
                else synthetic(ref value);
            };
        }

        SyntheticRowValue Current => _view._synthetic[_syntheticIndex];

        ValueGetter<TValue> SyntheticGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index == _view._label.Column.Index)
                return (ref TValue v) => v = (TValue)_view._label.Value(Current.ClassName);
            if (column.Index == _view._image.Index)
                return _view._imageKind switch
                {
                    ImageColumnKind.MLImage => Cast<MLImage, TValue>(column, (ref MLImage v) => v = MLImage.CreateFromStream(new MemoryStream(ReadImage()))),
                    ImageColumnKind.Path => Cast<ReadOnlyMemory<char>, TValue>(column, (ref ReadOnlyMemory<char> v) => v = Current.ImagePath.AsMemory()),
                    _ => Cast<VBuffer<byte>, TValue>(column, (ref VBuffer<byte> v) => { var b = ReadImage(); v = new VBuffer<byte>(b.Length, b); }),
                };
            return (ref TValue v) => v = default!;
        }

        byte[] ReadImage()
        {
            if (_bytesFor != _syntheticIndex)
            {
                try { _bytes = File.ReadAllBytes(Current.ImagePath); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new InvalidOperationException($"The synthetic image {Current.ImagePath} (class '{Current.ClassName}') cannot be read: {e.Message}. " +
                                                        "Was the DiffIIAugment cache folder deleted after fitting?", e);
                }
                _bytesFor = _syntheticIndex;
            }
            return _bytes!;
        }

        static ValueGetter<TValue> Cast<T, TValue>(DataViewSchema.Column column, ValueGetter<T> getter) =>
            getter as ValueGetter<TValue>
            ?? throw new InvalidOperationException($"Column '{column.Name}' holds {typeof(T).Name}, not {typeof(TValue).Name}.");

        protected override void Dispose(bool disposing)
        {
            if (disposing) _source.Dispose();
            base.Dispose(disposing);
        }
    }
}
