using DiffII.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.Experiments.Classification;

/// <summary>
/// Passes 0 .. n-1 of a <see cref="ReplacementMixingDataView"/>'s schedule one after another, read from the mixing
/// view's source by <see cref="ReplacementMixingDataView.PlanForPass"/>: every cursor yields the same rows, and row
/// ids are positions, so trainers that index state by row id (SDCA) see consistent data.
/// </summary>
sealed class StackedPassesDataView : IDataView
{
    readonly IDataView _source;
    readonly int[][] _counts;
    readonly long _rows;

    public StackedPassesDataView(IDataView source, ReplacementMixingDataView mixing, int passes)
    {
        if (passes < 1) throw new ArgumentOutOfRangeException(nameof(passes), $"The number of stacked passes must be at least 1; got {passes}.");
        _source = source;
        long sourceRows = 0;
        using (var cursor = source.GetRowCursor([])) while (cursor.MoveNext()) sourceRows++;
        _counts = new int[passes][];
        for (int pass = 0; pass < passes; pass++)
        {
            var plan = mixing.PlanForPass(pass);
            var counts = new int[sourceRows];
            foreach (long row in plan) counts[row]++;
            _counts[pass] = counts;
            _rows += plan.Count;
        }
    }

    public DataViewSchema Schema => _source.Schema;
    public bool CanShuffle => false;
    public int Passes => _counts.Length;
    public long? GetRowCount() => _rows;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
        new Cursor(this, columnsNeeded.ToArray());

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    sealed class Cursor(StackedPassesDataView view, DataViewSchema.Column[] columns) : DataViewRowCursor
    {
        readonly HashSet<int> _active = columns.Select(c => c.Index).ToHashSet();
        // Getters of the current pass's source cursor, made on first use in each pass.
        readonly Dictionary<int, Delegate> _getters = [];
        DataViewRowCursor? _source;
        int _pass = -1;
        long _sourceRow = -1;
        int _remaining;
        long _position = -1;

        public override DataViewSchema Schema => view.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => _active.Contains(column.Index);

        public override bool MoveNext()
        {
            if (_remaining > 0) { _remaining--; _position++; return true; }
            while (true)
            {
                if (_source is null)
                {
                    if (_pass + 1 >= view._counts.Length) return false;
                    _pass++;
                    _source = view._source.GetRowCursor(columns);
                    _getters.Clear();
                    _sourceRow = -1;
                }
                if (!_source.MoveNext())
                {
                    _source.Dispose();
                    _source = null;
                    continue;
                }
                _sourceRow++;
                int count = view._counts[_pass][_sourceRow];
                if (count == 0) continue;
                _remaining = count - 1;
                _position++;
                return true;
            }
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column)) throw new InvalidOperationException($"Column '{column.Name}' was not requested from this cursor.");
            return (ref TValue value) =>
            {
                if (_source is null) throw new InvalidOperationException("The cursor is not on a row.");
                if (!_getters.TryGetValue(column.Index, out var getter))
                    _getters[column.Index] = getter = _source.GetGetter<TValue>(column);
                ((ValueGetter<TValue>)getter)(ref value);
            };
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _source?.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>Passes rows through unchanged and counts the cursors opened on it: how many passes a trainer made.</summary>
sealed class PassCountingDataView(IDataView source) : IDataView
{
    int _cursors;

    public int Cursors => _cursors;
    public DataViewSchema Schema => source.Schema;
    public bool CanShuffle => source.CanShuffle;
    public long? GetRowCount() => source.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        Interlocked.Increment(ref _cursors);
        return source.GetRowCursor(columnsNeeded, rand);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
    {
        Interlocked.Increment(ref _cursors);
        return source.GetRowCursorSet(columnsNeeded, n, rand);
    }
}
