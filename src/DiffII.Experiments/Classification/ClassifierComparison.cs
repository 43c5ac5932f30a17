using System.Diagnostics;
using System.Globalization;
using System.Text;
using DiffII.MLNet.Data;
using DiffII.MLNet.FineTuning;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.Experiments.Classification;

/// <summary>How synthetic rows join the originals in the augmented arm of the comparison.</summary>
public sealed record AugmentationMixing
{
    AugmentationMixing(string name, bool replacement, double probability, int stackedPasses)
    {
        Name = name;
        IsReplacement = replacement;
        Probability = probability;
        StackedPasses = stackedPasses;
    }

    /// <summary>The mode's name in results, e.g. <c>concat</c> or <c>replacement(p=0.5)</c>.</summary>
    public string Name { get; }

    /// <summary>True for the replacement schedule, false for concatenation.</summary>
    public bool IsReplacement { get; }

    /// <summary>The replacement probability p (replacement only).</summary>
    public double Probability { get; }

    /// <summary>How many draws are stacked for trainers fed <see cref="ReplacementFeed.StackedPasses"/> (replacement only).</summary>
    public int StackedPasses { get; }

    /// <summary>Every row, originals and synthetic, each weighted by the weight column (<c>SampleWeight</c>) when the data has it.</summary>
    public static AugmentationMixing Concat { get; } = new("concat", false, 0, 0);

    /// <summary>
    /// The paper's schedule: each pass replaces each original by a synthetic image of its class with probability
    /// <paramref name="probability"/>. An image stands in for one original with all its rows (one per label for
    /// Diff-Mix's soft labels), each weighted by the weight column when the data has it, so a soft label adds its
    /// weighted cross-entropy (see <see cref="ReplacementMixingDataView"/>). Trainers fed
    /// <see cref="ReplacementFeed.EachPass"/> draw a new mix on every pass they make; the others get
    /// <paramref name="stackedPasses"/> draws stacked.
    /// </summary>
    public static AugmentationMixing Replacement(double probability = 0.5, int stackedPasses = 5)
    {
        if (probability is < 0 or > 1 || double.IsNaN(probability))
            throw new ArgumentOutOfRangeException(nameof(probability), $"The replacement probability must be in [0, 1]; got {probability}.");
        if (stackedPasses < 1)
            throw new ArgumentOutOfRangeException(nameof(stackedPasses), $"The number of stacked passes must be at least 1; got {stackedPasses}.");
        return new($"replacement(p={probability.ToString(CultureInfo.InvariantCulture)})", true, probability, stackedPasses);
    }
}

/// <summary>Settings of a <see cref="ClassifierComparison"/>. Column names default to what the featurizer and <see cref="AugmentedDataView"/> write.</summary>
public sealed record ClassifierComparisonOptions
{
    /// <summary>The class label: String or an integer type; mapped to a key (classes sorted by value) inside.</summary>
    public string LabelColumn { get; init; } = "Label";
    public string FeaturesColumn { get; init; } = ImageFeaturizer.DefaultFeaturesColumn;
    /// <summary>The Boolean column marking synthetic rows (required in the training data).</summary>
    public string IsSyntheticColumn { get; init; } = "IsSynthetic";
    /// <summary>
    /// The Single example-weight column; optional in the data. When present it is the trainers' example weight in every
    /// augmented arm (originals weigh 1), so Diff-Mix's soft labels count with their weights.
    /// </summary>
    public string WeightColumn { get; init; } = "SampleWeight";
    /// <summary>
    /// The UInt32 column numbering synthetic images (0 for originals), as <see cref="AugmentedDataView"/> writes it; the
    /// replacement arms draw images, all rows of one image together. Optional in the data; null declares every
    /// synthetic row an image of its own (see <see cref="ReplacementMixingDataView"/>).
    /// </summary>
    public string? SyntheticGroupColumn { get; init; } = "SyntheticGroup";
    /// <summary>The image column (path, bytes or MLImage) of every view, for trainers that read images; null when the views have none.</summary>
    public string? ImageColumn { get; init; }
    /// <summary>The folder relative paths in <see cref="ImageColumn"/> resolve against (path columns only).</summary>
    public string? ImageFolder { get; init; }
    public IReadOnlyList<ClassifierTrainer> Trainers { get; init; } = ClassifierTrainer.Defaults();
    /// <summary>The augmented arms; the originals-only arm always runs.</summary>
    public IReadOnlyList<AugmentationMixing> Mixings { get; init; } = [AugmentationMixing.Concat];
    /// <summary>Seeds the replacement draws and the <see cref="MLContext"/> each trainer is fitted in (a fresh one per fit).</summary>
    public int Seed { get; init; } = 1;
}

/// <summary>
/// One trainer, trained on one arm, evaluated on one test set. <see cref="TrainingRows"/> is the rows per pass over
/// the training data (for a live replacement view whose passes differ in length, because some synthetic images have
/// several rows, the rows of its first pass); <see cref="TrainingPasses"/> the cursors the trainer opened on it during <c>Fit</c>;
/// <see cref="Mixes"/> how many different replacement draws it saw (0 for arms without replacement, and for the schedule in expectation).
/// </summary>
public sealed record ComparisonRow(
    string Trainer, string Mode, string TestSet,
    double MicroAccuracy, double MacroAccuracy, double LogLoss,
    long TrainingRows, int TrainingPasses, int Mixes, double TrainingSeconds,
    IReadOnlyList<ClassMetrics> PerClass);

/// <summary>
/// A trained classifier from the comparison. <see cref="Model"/> maps a features column to <c>Score</c> and a String
/// <c>PredictedLabel</c>; put the featurizer in front (<see cref="WithFeaturizer"/>, <see cref="Save"/>) to score images.
/// </summary>
public sealed class TrainedClassifier
{
    internal TrainedClassifier(string trainer, string mode, ITransformer model, IReadOnlyList<string> classes)
    {
        Trainer = trainer;
        Mode = mode;
        Model = model;
        Classes = classes;
    }

    public string Trainer { get; }
    public string Mode { get; }
    public ITransformer Model { get; }
    /// <summary>The classes in key order: <c>Score[i]</c> is the probability of <c>Classes[i]</c>.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>The scoring model from images: <paramref name="featurizer"/> (as <see cref="ImageFeaturizer.Featurize"/> returns it) then this classifier.</summary>
    public ITransformer WithFeaturizer(ITransformer featurizer) => new TransformerChain<ITransformer>(featurizer, Model);

    /// <summary>
    /// Saves the image scoring model as an ordinary ML.NET .zip: load it with <see cref="ClassifierModel.Load"/> (or
    /// <c>mlContext.Model.Load</c>, after <see cref="ImageFeaturizer.Register"/> if the image column holds bytes).
    /// <paramref name="inputSchema"/> is the schema of the data that will be scored (it holds the image column).
    /// </summary>
    public void Save(MLContext ml, ITransformer featurizer, DataViewSchema inputSchema, string path)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        ml.Model.Save(WithFeaturizer(featurizer), inputSchema, path);
    }
}

/// <summary>Loading a saved image classifier.</summary>
public static class ClassifierModel
{
    /// <summary>Registers this library's custom mappings with <paramref name="ml"/>, then loads the .zip at <paramref name="path"/>.</summary>
    public static ITransformer Load(MLContext ml, string path, out DataViewSchema inputSchema)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"The model file {path} does not exist.", path);
        ImageFeaturizer.Register(ml);
        return ml.Model.Load(path, out inputSchema);
    }
}

/// <summary>What a saved classifier predicts for one image; use with <c>PredictionEngine</c>.</summary>
public sealed class ClassifierPrediction
{
    public string PredictedLabel { get; set; } = "";
    /// <summary>Class probabilities in the order of <see cref="TrainedClassifier.Classes"/>.</summary>
    public float[] Score { get; set; } = [];
}

/// <summary>The comparison's rows, a text table of them, and the trained models.</summary>
public sealed class ComparisonResult
{
    readonly Dictionary<(string Trainer, string Mode), TrainedClassifier> _models;

    internal ComparisonResult(IReadOnlyList<ComparisonRow> rows, IReadOnlyList<TrainedClassifier> models, IReadOnlyList<string> testSets, IReadOnlyList<string> classes)
    {
        Rows = rows;
        Models = models;
        TestSets = testSets;
        Classes = classes;
        _models = models.ToDictionary(m => (m.Trainer, m.Mode));
    }

    /// <summary>One row per (trainer, mode, test set), in the order trainers, then modes (originals first), then test sets.</summary>
    public IReadOnlyList<ComparisonRow> Rows { get; }
    public IReadOnlyList<TrainedClassifier> Models { get; }
    public IReadOnlyList<string> TestSets { get; }
    public IReadOnlyList<string> Classes { get; }

    public TrainedClassifier Model(string trainer, string mode) =>
        _models.TryGetValue((trainer, mode), out var model) ? model
        : throw new ArgumentException($"No model for trainer '{trainer}' and mode '{mode}'. Models: {string.Join(", ", _models.Keys.Select(k => $"{k.Trainer}/{k.Mode}"))}.");

    /// <summary>The model with the highest micro accuracy on <paramref name="testSet"/>; ties go to the lower log loss, then to the earlier row.</summary>
    public TrainedClassifier BestModel(string testSet)
    {
        if (!TestSets.Contains(testSet))
            throw new ArgumentException($"There is no test set '{testSet}'. Test sets: {string.Join(", ", TestSets)}.", nameof(testSet));
        var best = Rows.Where(r => r.TestSet == testSet)
            .OrderByDescending(r => r.MicroAccuracy).ThenBy(r => r.LogLoss).First();
        return Model(best.Trainer, best.Mode);
    }

    /// <summary>A fixed-width text table of the rows.</summary>
    public string ToTable()
    {
        string[] header = ["Trainer", "Mode", "Test set", "MicroAcc", "MacroAcc", "LogLoss", "Rows", "Passes", "Mixes", "Seconds"];
        var cells = Rows.Select(r => new[]
        {
            r.Trainer, r.Mode, r.TestSet,
            PerClassMetrics.Format(r.MicroAccuracy), PerClassMetrics.Format(r.MacroAccuracy), PerClassMetrics.Format(r.LogLoss),
            r.TrainingRows.ToString(CultureInfo.InvariantCulture), r.TrainingPasses.ToString(CultureInfo.InvariantCulture),
            r.Mixes.ToString(CultureInfo.InvariantCulture), r.TrainingSeconds.ToString("0.00", CultureInfo.InvariantCulture),
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, cells.Count == 0 ? 0 : cells.Max(c => c[i].Length))).ToArray();
        var text = new StringBuilder();
        void Line(string[] values)
        {
            // Names left-aligned, numbers right-aligned.
            text.AppendJoin("  ", values.Select((v, i) => i < 3 ? v.PadRight(widths[i]) : v.PadLeft(widths[i])));
            text.Append('\n');
        }
        Line(header);
        text.Append(string.Join("  ", widths.Select(w => new string('-', w)))).Append('\n');
        foreach (var row in cells) Line(row);
        return text.ToString();
    }

    public override string ToString() => ToTable();
}

/// <summary>
/// The with/without-augmentation comparison: each trainer is trained on the originals only and on the originals plus
/// synthetic rows under each mixing mode, and evaluated on every test set (micro and macro accuracy, log loss,
/// per-class accuracy).
/// </summary>
/// <remarks>
/// Inputs are featurised views (see <see cref="ImageFeaturizer.Featurize"/>); cache them, since every trainer reads the
/// data several times. The training view holds originals and synthetic rows (<c>IsSynthetic</c>), as
/// <see cref="AugmentedDataView"/> makes them; test views need only the label and features. The label becomes a key
/// with classes sorted by value, fitted on the whole training view, so all arms share one class order. A test class
/// absent from the training originals is an error, since no arm could predict it fairly.
/// </remarks>
public static class ClassifierComparison
{
    const string LabelKeyColumn = "DiffIILabelKey";
    const string SyntheticFlagColumn = "DiffIIIsSyntheticValue";
    public const string OriginalsMode = "originals";

    public static ComparisonResult Run(MLContext ml, IDataView train, IDataView test, ClassifierComparisonOptions? options = null) =>
        Run(ml, train, new Dictionary<string, IDataView> { ["test"] = test }, options);

    public static ComparisonResult Run(MLContext ml, IDataView train, IReadOnlyDictionary<string, IDataView> testSets, ClassifierComparisonOptions? options = null)
    {
        options ??= new ClassifierComparisonOptions();
        if (testSets.Count == 0) throw new ArgumentException("At least one test set is needed.", nameof(testSets));
        if (options.Trainers.Count == 0) throw new ArgumentException("At least one trainer is needed.", nameof(options));
        if (options.Trainers.Select(t => t.Name).Distinct().Count() != options.Trainers.Count)
            throw new ArgumentException($"Trainer names must differ: {string.Join(", ", options.Trainers.Select(t => t.Name))}.", nameof(options));
        if (options.Mixings.Select(m => m.Name).Distinct().Count() != options.Mixings.Count)
            throw new ArgumentException($"Mixing modes must differ: {string.Join(", ", options.Mixings.Select(m => m.Name))}.", nameof(options));

        CheckColumns(train.Schema, options, "training data");
        var flag = ColumnKinds.Find(train.Schema, options.IsSyntheticColumn, "IsSynthetic (training data)");
        if (flag.Type != BooleanDataViewType.Instance)
            throw new ArgumentOutOfRangeException(nameof(train), $"The IsSynthetic column '{flag.Name}' of the training data has type {flag.Type}; it must be Boolean.");
        var weight = train.Schema.GetColumnOrNull(options.WeightColumn);
        if (weight is { } w && w.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(train), $"The weight column '{w.Name}' of the training data has type {w.Type}; it must be Single.");
        bool hasWeight = weight is not null;
        if (options.SyntheticGroupColumn is { } groupName && train.Schema.GetColumnOrNull(groupName) is { } group && group.Type != NumberDataViewType.UInt32)
            throw new ArgumentOutOfRangeException(nameof(train), $"The synthetic group column '{group.Name}' of the training data has type {group.Type}; it must be UInt32.");
        foreach (var (name, test) in testSets) CheckColumns(test.Schema, options, $"test set '{name}'");
        if (options.Trainers.FirstOrDefault(t => t.ReadsImages) is { } imageTrainer)
        {
            if (options.ImageColumn is null)
                throw new ArgumentException($"Trainer '{imageTrainer.Name}' reads images; set ImageColumn to the views' image column.", nameof(options));
            foreach (var (what, view) in testSets.Select(p => ($"test set '{p.Key}'", p.Value)).Prepend(("training data", train)))
                _ = ColumnKinds.Find(view.Schema, options.ImageColumn, $"image ({what})");
        }

        var keyMap = ml.Transforms.Conversion.MapValueToKey(LabelKeyColumn, options.LabelColumn,
            keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue).Fit(train);
        var keyed = keyMap.Transform(train);
        var classes = PerClassMetrics.ClassNames(keyed.Schema[LabelKeyColumn]);

        // Read the synthetic groups and weights once before any training, so bad ones fail here rather than after some arms have run.
        if (options.Mixings.FirstOrDefault(m => m.IsReplacement) is { } replacement)
            _ = new ReplacementMixingDataView(keyed, options.LabelColumn, options.IsSyntheticColumn, replacement.Probability, options.Seed,
                options.SyntheticGroupColumn, options.WeightColumn).GetRowCount();

        var filtered = OriginalsOf(ml, keyed, options);
        var originals = ml.Data.Cache(ml.Transforms.DropColumns(SyntheticFlagColumn).Fit(filtered).Transform(filtered));
        // ML.NET's caches fill on their first pass. Fill them now (which also pulls every training row through a cached
        // input, featurising it), so the first arm's training time is the trainer's, not the featuriser's.
        FillCache(originals);
        var originalClasses = ClassesIn(originals, options.LabelColumn);
        if (originalClasses.Count == 0) throw new ArgumentException("The training data has no original rows (all rows have IsSynthetic = true).", nameof(train));
        var tests = testSets.Select(p =>
        {
            var unknown = ClassesIn(p.Value, options.LabelColumn).Except(originalClasses).Order(StringComparer.Ordinal).ToList();
            if (unknown.Count > 0)
                throw new ArgumentException($"Test set '{p.Key}' has classes the training originals lack in '{options.LabelColumn}': {string.Join(", ", unknown)}.", nameof(testSets));
            return (Name: p.Key, Data: keyMap.Transform(p.Value));
        }).ToList();

        var rows = new List<ComparisonRow>();
        var models = new List<TrainedClassifier>();
        foreach (var trainer in options.Trainers)
        {
            var arms = new List<(string Mode, AugmentationMixing? Mixing, Func<(IDataView Data, Func<int> Mixes)> Make, bool Weighted)>
            {
                (OriginalsMode, null, () => (originals, () => 0), false),
            };
            foreach (var mixing in options.Mixings)
                arms.Add((mixing.Name, mixing, () => AugmentedArm(ml, keyed, mixing, trainer.Feed, options),
                    hasWeight || (mixing.IsReplacement && trainer.Feed == ReplacementFeed.Expected)));

            foreach (var (mode, mixing, make, weighted) in arms)
            {
                var (data, mixes) = make();
                // A live view's passes can differ in length (two-row images): report the first pass, the one the trainer starts on.
                long trainingRows = data.GetRowCount() ?? (data is ReplacementMixingDataView live ? live.PlanForPass(0).Count : -1);
                var counted = new PassCountingDataView(data);
                bool ownDraws = trainer.Feed == ReplacementFeed.OwnSchedule && mixing is { IsReplacement: true };
                var columns = new TrainerColumns(LabelKeyColumn, options.FeaturesColumn, weighted ? options.WeightColumn : null)
                {
                    Image = options.ImageColumn,
                    ImageFolder = options.ImageFolder,
                    IsSynthetic = ownDraws ? options.IsSyntheticColumn : null,
                    SyntheticGroup = ownDraws ? options.SyntheticGroupColumn : null,
                    ReplacementProbability = ownDraws ? mixing!.Probability : 0,
                };
                // A fresh context per fit, so a trainer's randomness (SDCA's shuffling) does not depend on what ran before.
                var fitContext = new MLContext(options.Seed);
                var clock = Stopwatch.StartNew();
                var estimator = trainer.Create(fitContext, columns);
                ITransformer fitted;
                try { fitted = estimator.Fit(counted); }
                catch (Exception e) when (e is not ArgumentException)
                {
                    throw new InvalidOperationException($"Trainer '{trainer.Name}' failed on the '{mode}' training data: {e.Message}", e);
                }
                double seconds = clock.Elapsed.TotalSeconds;
                int passes = counted.Cursors;
                // A trainer that draws the schedule itself draws once per epoch it ran.
                if (ownDraws && estimator is ResNet18FineTuneTrainer { LastReport: { } report }) mixes = () => report.EpochsRun;

                var scoredOnOriginals = fitted.Transform(originals);
                var toValue = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scoredOnOriginals);
                models.Add(new TrainedClassifier(trainer.Name, mode, new TransformerChain<ITransformer>(fitted, toValue), classes));

                foreach (var (testName, testData) in tests)
                {
                    var scored = fitted.Transform(testData);
                    var metrics = ml.MulticlassClassification.Evaluate(scored, LabelKeyColumn, topKPredictionCount: 0);
                    rows.Add(new ComparisonRow(trainer.Name, mode, testName,
                        metrics.MicroAccuracy, metrics.MacroAccuracy, metrics.LogLoss,
                        trainingRows, passes, mixes(), seconds,
                        PerClassMetrics.FromConfusionMatrix(metrics.ConfusionMatrix, classes)));
                }
            }
        }
        return new ComparisonResult(rows, models, tests.Select(t => t.Name).ToList(), classes);
    }

    static void FillCache(IDataView data)
    {
        using var cursor = data.GetRowCursor(data.Schema);
        while (cursor.MoveNext()) { }
    }

    static (IDataView Data, Func<int> Mixes) AugmentedArm(MLContext ml, IDataView keyed, AugmentationMixing mixing, ReplacementFeed feed, ClassifierComparisonOptions options)
    {
        if (!mixing.IsReplacement || feed == ReplacementFeed.OwnSchedule) return (keyed, () => 0);
        if (feed == ReplacementFeed.Expected)
            return (ml.Data.Cache(new ExpectedReplacementDataView(keyed, options.LabelColumn, options.IsSyntheticColumn, mixing.Probability,
                options.SyntheticGroupColumn, options.WeightColumn)), () => 0);
        var mixingView = new ReplacementMixingDataView(keyed, options.LabelColumn, options.IsSyntheticColumn, mixing.Probability, options.Seed,
            options.SyntheticGroupColumn, options.WeightColumn);
        if (feed == ReplacementFeed.EachPass) return (mixingView, () => mixingView.PassesStarted);
        var stacked = new StackedPassesDataView(keyed, mixingView, mixing.StackedPasses);
        return (ml.Data.Cache(stacked), () => stacked.Passes);
    }

    static IDataView OriginalsOf(MLContext ml, IDataView keyed, ClassifierComparisonOptions options)
    {
        var asNumber = ml.Transforms.Conversion.ConvertType(SyntheticFlagColumn, options.IsSyntheticColumn, DataKind.Single).Fit(keyed).Transform(keyed);
        return ml.Data.FilterRowsByColumn(asNumber, SyntheticFlagColumn, lowerBound: double.NegativeInfinity, upperBound: 0.5);
    }

    static HashSet<string> ClassesIn(IDataView data, string labelColumn)
    {
        var codec = ColumnKinds.Label(data.Schema, labelColumn);
        var set = new HashSet<string>(StringComparer.Ordinal);
        using var cursor = data.GetRowCursor([codec.Column]);
        var read = codec.Reader(cursor);
        while (cursor.MoveNext())
            if (read() is { } name) set.Add(name);
        return set;
    }

    static void CheckColumns(DataViewSchema schema, ClassifierComparisonOptions options, string what)
    {
        var label = ColumnKinds.Find(schema, options.LabelColumn, $"label ({what})");
        if (label.Type is not TextDataViewType && !(label.Type is NumberDataViewType n && n.RawType != typeof(float) && n.RawType != typeof(double)))
            throw new ArgumentOutOfRangeException(nameof(options), $"The label column '{label.Name}' of the {what} has type {label.Type}; it must be String or an integer type.");
        var features = ColumnKinds.Find(schema, options.FeaturesColumn, $"features ({what})");
        if (features.Type is not VectorDataViewType { ItemType: NumberDataViewType { RawType: var raw }, Size: > 0 } || raw != typeof(float))
            throw new ArgumentOutOfRangeException(nameof(options), $"The features column '{features.Name}' of the {what} has type {features.Type}; it must be a fixed-size Single vector (as ImageFeaturizer writes).");
    }
}
