using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Data;

/// <summary>
/// The paper's classifier schedule (after Trabucco et al.): each pass over the data yields every original row, or,
/// with probability p, a synthetic row of the same class in its place, drawn afresh on every pass. So a trainer that
/// makes several passes sees a different mix each time, and each pass has exactly as many rows as there are
/// originals.
/// </summary>
/// <remarks>
/// Put it after featurising and <c>AppendCacheCheckpoint</c>: the source is read once to index labels and the
/// <c>IsSynthetic</c> flags, and once per pass, so it should be cheap to read. Rows come in source order (a synthetic
/// row picked twice in a pass comes twice); shuffle downstream if the trainer is order-sensitive. The pass number
/// counts cursors opened on this view; pass k always draws the same rows for a given seed.
/// </remarks>
public sealed class ReplacementMixingDataView : IDataView
{
    readonly IDataView _source;
    readonly LabelCodec _label;
    readonly DataViewSchema.Column _isSynthetic;
    readonly double _probability;
    readonly int _seed;
    readonly Lazy<Index> _index;
    int _passes;

    public ReplacementMixingDataView(IDataView source, string labelColumn, string isSyntheticColumn = "IsSynthetic", double probability = 0.5, int seed = 0)
    {
        if (probability is < 0 or > 1 || double.IsNaN(probability))
            throw new ArgumentOutOfRangeException(nameof(probability), $"The replacement probability must be in [0, 1]; got {probability}.");
        _source = source;
        _label = ColumnKinds.Label(source.Schema, labelColumn);
        _isSynthetic = ColumnKinds.Find(source.Schema, isSyntheticColumn, "IsSynthetic");
        if (_isSynthetic.Type != BooleanDataViewType.Instance)
            throw new ArgumentOutOfRangeException(nameof(isSyntheticColumn), $"The column '{isSyntheticColumn}' has type {_isSynthetic.Type}; it must be Boolean (as DiffIIAugment writes it).");
        _probability = probability;
        _seed = seed;
        _index = new Lazy<Index>(BuildIndex);
    }

    public DataViewSchema Schema => _source.Schema;
    public bool CanShuffle => false;
    public double Probability => _probability;
    /// <summary>How many passes (cursors) have been started.</summary>
    public int PassesStarted => _passes;
    public long? GetRowCount() => _index.Value.Originals.Count;

    sealed record Index(List<long> Originals, List<string?> OriginalClass, Dictionary<string, List<long>> SyntheticByClass, long SourceRows);

    Index BuildIndex()
    {
        var originals = new List<long>();
        var originalClass = new List<string?>();
        var synthetic = new Dictionary<string, List<long>>();
        using var cursor = _source.GetRowCursor([_label.Column, _isSynthetic]);
        var label = _label.Reader(cursor);
        var flag = cursor.GetGetter<bool>(_isSynthetic);
        long row = 0;
        while (cursor.MoveNext())
        {
            bool isSynthetic = false;
            flag(ref isSynthetic);
            string? className = label();
            if (isSynthetic)
            {
                if (className is not null)
                {
                    if (!synthetic.TryGetValue(className, out var list)) synthetic[className] = list = [];
                    list.Add(row);
                }
            }
            else
            {
                originals.Add(row);
                originalClass.Add(className);
            }
            row++;
        }
        return new Index(originals, originalClass, synthetic, row);
    }

    /// <summary>The source rows pass <paramref name="pass"/> yields, in output order (for inspection and tests).</summary>
    public IReadOnlyList<long> PlanForPass(int pass)
    {
        var index = _index.Value;
        var random = new Random(unchecked(_seed * 7919 + pass * 104729 + 17));
        var rows = new List<long>(index.Originals.Count);
        for (int i = 0; i < index.Originals.Count; i++)
        {
            // Draw both numbers for every row, so one class gaining synthetic rows does not shift other rows' draws.
            double u = random.NextDouble();
            int pick = random.Next(int.MaxValue);
            string? className = index.OriginalClass[i];
            if (u < _probability && className is not null && index.SyntheticByClass.TryGetValue(className, out var pool))
                rows.Add(pool[pick % pool.Count]);
            else
                rows.Add(index.Originals[i]);
        }
        rows.Sort();
        return rows;
    }

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        int pass = Interlocked.Increment(ref _passes) - 1;
        var plan = PlanForPass(pass);
        var counts = new int[_index.Value.SourceRows];
        foreach (var r in plan) counts[r]++;
        return new Cursor(_source.GetRowCursor(columnsNeeded), counts);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    sealed class Cursor(DataViewRowCursor source, int[] counts) : DataViewRowCursor
    {
        readonly ValueGetter<DataViewRowId> _sourceId = source.GetIdGetter();
        long _sourceRow = -1;
        int _remaining;
        int _repeat;
        long _position = -1;

        public override DataViewSchema Schema => source.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => source.IsColumnActive(column);
        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => source.GetGetter<TValue>(column);

        public override bool MoveNext()
        {
            if (_remaining > 0) { _remaining--; _repeat++; _position++; return true; }
            while (source.MoveNext())
            {
                _sourceRow++;
                if (counts[_sourceRow] == 0) continue;
                _remaining = counts[_sourceRow] - 1;
                _repeat = 0;
                _position++;
                return true;
            }
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) =>
        {
            _sourceId(ref id);
            if (_repeat > 0) id = id.Combine(new DataViewRowId((ulong)_repeat, 0));
        };

        protected override void Dispose(bool disposing)
        {
            if (disposing) source.Dispose();
            base.Dispose(disposing);
        }
    }
}
