using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Data;

/// <summary>
/// The paper's replacement schedule in expectation, for trainers that minimise one fixed objective (L-BFGS, SDCA):
/// every row the schedule can yield, once, with its example weight multiplied by how often a pass yields it on
/// average (<see cref="ReplacementMixingDataView.ExpectedRowsPerPass"/>). Each replaceable original weighs 1 − p;
/// the synthetic images of a class share p per original of that class; rows that are never drawn are left out.
/// </summary>
/// <remarks>
/// For a loss that is a sum over rows, the expected loss of a random pass of <see cref="ReplacementMixingDataView"/>
/// is exactly the weighted loss over this view, so a convex trainer converges to the schedule's expected optimum.
/// A live mixing view instead changes its rows between the passes of one optimisation (L-BFGS's line search then
/// compares losses of different data). Trainers that take a step per batch (SGD, the fine-tuning trainer) should keep
/// the live schedule: for them every pass is a fresh draw, as in the paper.
/// The weight column is the source's, rescaled, or a new Single column of that name when the source has none.
/// </remarks>
public sealed class ExpectedReplacementDataView : IDataView
{
    readonly IDataView _source;
    readonly double[] _multiplicity;
    readonly int _weightIndex;
    readonly bool _weightAdded;

    public ExpectedReplacementDataView(IDataView source, string labelColumn, string isSyntheticColumn = "IsSynthetic", double probability = 0.5,
        string? syntheticGroupColumn = "SyntheticGroup", string weightColumn = "SampleWeight")
    {
        _source = source;
        // The live view's index is the one definition of which image stands in for which original.
        var live = new ReplacementMixingDataView(source, labelColumn, isSyntheticColumn, probability, seed: 0, syntheticGroupColumn, weightColumn);
        _multiplicity = live.ExpectedRowsPerPass().ToArray();
        if (source.Schema.GetColumnOrNull(weightColumn) is { } weight)
        {
            _weightIndex = weight.Index;
            Schema = source.Schema;
        }
        else
        {
            var builder = new DataViewSchema.Builder();
            builder.AddColumns(source.Schema);
            builder.AddColumn(weightColumn, NumberDataViewType.Single);
            Schema = builder.ToSchema();
            _weightIndex = source.Schema.Count;
            _weightAdded = true;
        }
        RowCount = _multiplicity.Count(m => m > 0);
    }

    public DataViewSchema Schema { get; }
    public bool CanShuffle => false;
    /// <summary>The rows this view yields: every source row with a non-zero expected count.</summary>
    public long RowCount { get; }
    public long? GetRowCount() => RowCount;
    /// <summary>Per source row, the factor its weight is multiplied by (0: left out).</summary>
    public IReadOnlyList<double> Multiplicities => _multiplicity;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        bool weightNeeded = needed.Contains(_weightIndex);
        var sourceColumns = needed.Where(i => i < _source.Schema.Count).Select(i => _source.Schema[i]).ToList();
        return new Cursor(this, _source.GetRowCursor(sourceColumns), needed, weightNeeded);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    sealed class Cursor(ExpectedReplacementDataView view, DataViewRowCursor source, HashSet<int> active, bool weightActive) : DataViewRowCursor
    {
        readonly ValueGetter<float>? _sourceWeight = weightActive && !view._weightAdded ? source.GetGetter<float>(source.Schema[view._weightIndex]) : null;
        long _sourceRow = -1;
        long _position = -1;

        public override DataViewSchema Schema => view.Schema;
        public override long Position => _position;
        public override long Batch => 0;
        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index != view._weightIndex) return source.GetGetter<TValue>(source.Schema[column.Index]);
            if (typeof(TValue) != typeof(float))
                throw new InvalidOperationException($"The weight column '{column.Name}' is Single; it was asked for as {typeof(TValue).Name}.");
            ValueGetter<float> weight = (ref float value) =>
            {
                float original = 1f;
                _sourceWeight?.Invoke(ref original);
                value = (float)(original * view._multiplicity[_sourceRow]);
            };
            return (ValueGetter<TValue>)(Delegate)weight;
        }

        public override bool MoveNext()
        {
            while (source.MoveNext())
            {
                _sourceRow++;
                if (view._multiplicity[_sourceRow] == 0) continue;
                _position++;
                return true;
            }
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => source.GetIdGetter();

        protected override void Dispose(bool disposing)
        {
            if (disposing) source.Dispose();
            base.Dispose(disposing);
        }
    }
}
