using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Data;

/// <summary>
/// The paper's classifier schedule (after Trabucco et al.): each pass over the data yields every original row, or,
/// with probability p, a synthetic image of the same class in its place, drawn afresh on every pass. So a trainer that
/// makes several passes sees a different mix each time, and each pass has exactly as many images as there are
/// originals.
/// </summary>
/// <remarks>
/// <para>Put it after featurising and <c>AppendCacheCheckpoint</c>: the source is read once to index labels, the
/// <c>IsSynthetic</c> flags, the synthetic groups and the weights, and once per pass, so it should be cheap to read.
/// Rows come in source order (an image picked twice in a pass comes twice); shuffle downstream if the trainer is
/// order-sensitive. The pass number counts cursors opened on this view; pass k always draws the same rows for a given
/// seed.</para>
/// <para>What is drawn is a synthetic <em>image</em>, not a row: the rows sharing a <c>SyntheticGroup</c> number are the
/// labels of one image (Diff-Mix's soft labels become one weighted row per label), and a replacement yields all of
/// them, each with its own weight. Train with the weight column as the example weight
/// (<c>ClassifierComparison</c> does), so the image adds its soft-label cross-entropy in place of the original's.
/// An image whose rows are one row (a hard label) is drawn exactly as before groups existed: the same rows for the
/// same seed. With soft-labelled images a pass can have more rows than originals, so <see cref="GetRowCount"/> is
/// null; every pass still replaces originals one for one by images.</para>
/// <para>Which class's originals a soft-labelled image replaces: the class of its largest weight (ties go to the
/// label that comes first in source order; the augmenter lists the source class first). For Diff-Mix, an image of
/// class a edited towards class b at strength s ∈ {0.5, 0.7, 0.9} weighs s^0.5 ≥ 0.71 for b: b is the class the prompt
/// translated it to and what it mostly shows, and replacing a b original by it keeps most of that original's label
/// mass on b. Taking the source class instead would move ≥ 0.71 of every replaced original's label mass to other
/// classes, shifting each pass's class balance (and, with long-tail budgets, where tail classes are the sources of
/// most samples, draining the tail). Diff-Mix's own training code does not tie a replacement to a class at all: its
/// dataset (<c>HugFewShotDataset.__getitem__</c> in Zhicaiwww/Diff-Mix, <c>dataset/base.py</c>) replaces a real image,
/// with probability <c>synthetic_probability</c>, by one drawn uniformly from the whole synthetic pool, with the soft
/// label (1 − s^γ) for the source and s^γ for the target. Diff-II's official training script draws from the original's
/// own class (<c>syn_dir/&lt;category&gt;</c>), which is the schedule here; the largest-weight rule is how a soft label
/// fits it.</para>
/// <para>Data without the group column (made before groups existed, or by other code) is read as one image per
/// synthetic row; since that cannot tell a soft label's rows apart, it is refused when a synthetic row weighs other
/// than 1, unless <c>syntheticGroupColumn</c> is null, which declares every synthetic row an image of its own.</para>
/// </remarks>
public sealed class ReplacementMixingDataView : IDataView
{
    readonly IDataView _source;
    readonly LabelCodec _label;
    readonly DataViewSchema.Column _isSynthetic;
    readonly DataViewSchema.Column? _group;
    readonly DataViewSchema.Column? _weight;
    readonly string? _groupColumnName;
    readonly string? _weightColumnName;
    readonly double _probability;
    readonly int _seed;
    readonly Lazy<Index> _index;
    int _passes;

    /// <param name="syntheticGroupColumn">
    /// The UInt32 column numbering synthetic images (0 for originals), as <see cref="AugmentedDataView"/> and DiffIIAugment
    /// write it. When the data has no such column every synthetic row is its own image (see remarks); null says so explicitly.
    /// </param>
    /// <param name="weightColumn">
    /// The Single example-weight column, read to find each soft-labelled image's class (its largest weight); optional
    /// when every image is one row. Rows keep their weights either way; this view never changes a value.
    /// </param>
    public ReplacementMixingDataView(IDataView source, string labelColumn, string isSyntheticColumn = "IsSynthetic", double probability = 0.5, int seed = 0,
        string? syntheticGroupColumn = "SyntheticGroup", string? weightColumn = "SampleWeight")
    {
        if (probability is < 0 or > 1 || double.IsNaN(probability))
            throw new ArgumentOutOfRangeException(nameof(probability), $"The replacement probability must be in [0, 1]; got {probability}.");
        _source = source;
        _label = ColumnKinds.Label(source.Schema, labelColumn);
        _isSynthetic = ColumnKinds.Find(source.Schema, isSyntheticColumn, "IsSynthetic");
        if (_isSynthetic.Type != BooleanDataViewType.Instance)
            throw new ArgumentOutOfRangeException(nameof(isSyntheticColumn), $"The column '{isSyntheticColumn}' has type {_isSynthetic.Type}; it must be Boolean (as DiffIIAugment writes it).");
        _groupColumnName = syntheticGroupColumn;
        _weightColumnName = weightColumn;
        if (syntheticGroupColumn is not null && source.Schema.GetColumnOrNull(syntheticGroupColumn) is { } group)
        {
            if (group.Type != NumberDataViewType.UInt32)
                throw new ArgumentOutOfRangeException(nameof(syntheticGroupColumn),
                    $"The synthetic group column '{syntheticGroupColumn}' has type {group.Type}; it must be UInt32 (as DiffIIAugment writes it: 0 for originals, one number per synthetic image).");
            _group = group;
        }
        if (weightColumn is not null && source.Schema.GetColumnOrNull(weightColumn) is { } weight)
        {
            if (weight.Type != NumberDataViewType.Single)
                throw new ArgumentOutOfRangeException(nameof(weightColumn), $"The weight column '{weightColumn}' has type {weight.Type}; it must be Single (as DiffIIAugment writes it).");
            _weight = weight;
        }
        _probability = probability;
        _seed = seed;
        _index = new Lazy<Index>(BuildIndex);
    }

    public DataViewSchema Schema => _source.Schema;
    public bool CanShuffle => false;
    public double Probability => _probability;
    /// <summary>How many passes (cursors) have been started.</summary>
    public int PassesStarted => _passes;
    /// <summary>The synthetic group column read from the source, or null when it has none (every synthetic row is then an image of its own).</summary>
    public string? SyntheticGroupColumn => _group?.Name;
    /// <summary>The weight column read from the source, or null when it has none.</summary>
    public string? WeightColumn => _weight?.Name;

    /// <summary>
    /// The rows of every pass: one per original when every synthetic image is one row; null when some image has
    /// several rows (soft labels), since how many a pass brings depends on its draw.
    /// </summary>
    public long? GetRowCount() => _index.Value.HasMultiRowImages ? null : _index.Value.Originals.Count;

    /// <summary>
    /// Originals (source row and class, in source order) and, per class, the synthetic images that can stand in for
    /// them: each image's source rows, images in order of their first row.
    /// </summary>
    sealed record Index(List<long> Originals, List<string?> OriginalClass, Dictionary<string, List<long[]>> ImagesByClass, long SourceRows, bool HasMultiRowImages);

    /// <summary>One synthetic image while the index is read: its rows, and the label of its largest weight so far.</summary>
    sealed class ImageRows(uint group)
    {
        public uint Group { get; } = group;
        public List<long> Rows { get; } = [];
        public string? ClassName { get; private set; }
        float _classWeight = float.NegativeInfinity;

        public void Add(long row, string? className, float weight)
        {
            Rows.Add(row);
            // Strictly greater: a tie keeps the earlier row's label.
            if (className is not null && weight > _classWeight)
            {
                ClassName = className;
                _classWeight = weight;
            }
        }
    }

    Index BuildIndex()
    {
        var originals = new List<long>();
        var originalClass = new List<string?>();
        var images = new List<ImageRows>();
        var imageOfGroup = new Dictionary<uint, ImageRows>();
        var columns = new List<DataViewSchema.Column> { _label.Column, _isSynthetic };
        if (_group is { } groupColumn) columns.Add(groupColumn);
        if (_weight is { } weightColumn) columns.Add(weightColumn);
        using var cursor = _source.GetRowCursor(columns);
        var label = _label.Reader(cursor);
        var flag = cursor.GetGetter<bool>(_isSynthetic);
        ValueGetter<uint>? readGroup = _group is { } g ? cursor.GetGetter<uint>(g) : null;
        ValueGetter<float>? readWeight = _weight is { } w ? cursor.GetGetter<float>(w) : null;
        long row = 0;
        while (cursor.MoveNext())
        {
            bool isSynthetic = false;
            flag(ref isSynthetic);
            uint group = 0;
            readGroup?.Invoke(ref group);
            string? className = label();
            if (!isSynthetic)
            {
                if (group != 0)
                    throw new InvalidDataException(
                        $"Row {row} is an original ('{_isSynthetic.Name}' false) but its synthetic group '{_group!.Value.Name}' is {group}; originals have group 0.");
                originals.Add(row);
                originalClass.Add(className);
                row++;
                continue;
            }

            float weight = 1f;
            readWeight?.Invoke(ref weight);
            if (!(weight >= 0) || float.IsPositiveInfinity(weight))
                throw new InvalidDataException($"Synthetic row {row} has weight {weight} in '{_weight!.Value.Name}'; example weights must be finite and at least 0.");
            ImageRows image;
            if (_group is { } named)
            {
                if (group == 0)
                    throw new InvalidDataException(
                        $"Row {row} is synthetic but its synthetic group '{named.Name}' is 0; every synthetic row needs the number of the image it is a label of (as DiffIIAugment writes it).");
                if (!imageOfGroup.TryGetValue(group, out var known))
                {
                    imageOfGroup[group] = known = new ImageRows(group);
                    images.Add(known);
                }
                image = known;
            }
            else
            {
                if (weight != 1f && _groupColumnName is not null)
                    throw new InvalidDataException(
                        $"Synthetic row {row} has weight {weight} in '{_weight!.Value.Name}', but the data has no synthetic group column '{_groupColumnName}', so the rows " +
                        "of a soft-labelled image cannot be told apart and each would be drawn as a full image of its label's class. Add the column " +
                        "(DiffIIAugment and AugmentedDataView write it), or pass syntheticGroupColumn: null if every synthetic row is an image of its own.");
                image = new ImageRows(0);
                images.Add(image);
            }
            image.Add(row, className, weight);
            row++;
        }

        if (_weight is null && images.FirstOrDefault(i => i.Rows.Count > 1) is { } unweighted)
            throw new InvalidDataException(
                $"Synthetic image {unweighted.Group} (group column '{_group!.Value.Name}') has {unweighted.Rows.Count} rows, one per label, but the data has " +
                (_weightColumnName is null ? "no weight column" : $"no weight column '{_weightColumnName}'") +
                "; the rows of a soft-labelled image need their weights, both to pick the image's class and for the trainer.");

        var byClass = new Dictionary<string, List<long[]>>();
        foreach (var image in images)
        {
            if (image.ClassName is not { } className) continue; // no row with a class: it can replace nothing
            if (!byClass.TryGetValue(className, out var pool)) byClass[className] = pool = [];
            pool.Add(image.Rows.ToArray());
        }
        return new Index(originals, originalClass, byClass, row, images.Any(i => i.Rows.Count > 1));
    }

    /// <summary>
    /// Per source row, how many times a pass yields it on average: 1 − p for an original that can be replaced, 1 for
    /// one whose class has no synthetic image, and for each row of a synthetic image of class c, p · n_c / m_c (n_c
    /// originals of c, m_c images of c), since each of the n_c originals draws one of the m_c images with probability p.
    /// A convex trainer given these as example weights (<see cref="ExpectedReplacementDataView"/>) minimises the
    /// schedule's expected loss, with one fixed objective instead of a new draw per pass.
    /// </summary>
    public IReadOnlyList<double> ExpectedRowsPerPass()
    {
        var index = _index.Value;
        var expected = new double[index.SourceRows];
        var originalsOfClass = new Dictionary<string, int>();
        for (int i = 0; i < index.Originals.Count; i++)
        {
            string? className = index.OriginalClass[i];
            bool replaceable = className is not null && index.ImagesByClass.ContainsKey(className);
            expected[index.Originals[i]] = replaceable ? 1 - _probability : 1;
            if (className is not null) originalsOfClass[className] = originalsOfClass.GetValueOrDefault(className) + 1;
        }
        foreach (var (className, pool) in index.ImagesByClass)
        {
            if (!originalsOfClass.TryGetValue(className, out int originals)) continue; // no original to stand in for
            double perImage = _probability * originals / pool.Count;
            foreach (var rows in pool)
                foreach (long row in rows) expected[row] += perImage;
        }
        return expected;
    }

    /// <summary>The source rows pass <paramref name="pass"/> yields, in output order (for inspection and tests).</summary>
    public IReadOnlyList<long> PlanForPass(int pass)
    {
        var index = _index.Value;
        var random = new Random(unchecked(_seed * 7919 + pass * 104729 + 17));
        var rows = new List<long>(index.Originals.Count);
        for (int i = 0; i < index.Originals.Count; i++)
        {
            // Draw both numbers for every row, so one class gaining synthetic images does not shift other rows' draws.
            double u = random.NextDouble();
            int pick = random.Next(int.MaxValue);
            string? className = index.OriginalClass[i];
            if (u < _probability && className is not null && index.ImagesByClass.TryGetValue(className, out var pool))
                rows.AddRange(pool[pick % pool.Count]);
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
