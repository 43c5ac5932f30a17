using DiffII.Experiments.Classification;
using DiffII.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace DiffII.MLNet.Tests.Classification;

/// <summary>
/// How ML.NET trainers read a view that draws a new replacement mix on every cursor; the comparison's choice of
/// <see cref="ReplacementFeed"/> per trainer rests on these counts.
/// </summary>
public sealed class TrainerPassesTests
{
    sealed class Row
    {
        public string Label { get; set; } = "";
        public bool IsSynthetic { get; set; }
        public float Id { get; set; }
        [VectorType(8)] public float[] Features { get; set; } = [];
    }

    /// <summary>60 originals in 3 classes, then 240 synthetic rows; the class shows in feature c.</summary>
    static IDataView Keyed(MLContext ml)
    {
        var random = new Random(1);
        var rows = new List<Row>();
        for (int i = 0; i < 300; i++)
        {
            int c = i % 3;
            rows.Add(new Row { Label = "c" + c, IsSynthetic = i >= 60, Id = i, Features = Enumerable.Range(0, 8).Select(j => (float)random.NextDouble() + (j == c ? 1f : 0f)).ToArray() });
        }
        var data = ml.Data.LoadFromEnumerable(rows);
        return ml.Data.Cache(ml.Transforms.Conversion.MapValueToKey("Key", "Label").Fit(data).Transform(data));
    }

    static readonly TrainerColumns Columns = new("Key", "Features", null);

    [Fact]
    public void SingleThreadedLbfgs_OpensACursorPerEvaluation_EachANewDraw()
    {
        var ml = new MLContext(1);
        var mixing = new ReplacementMixingDataView(Keyed(ml), "Label", probability: 0.5);
        ClassifierTrainer.LbfgsMaximumEntropy().Create(ml, Columns).Fit(mixing);
        Assert.True(mixing.PassesStarted > 10, $"{mixing.PassesStarted} passes");
        // Draws differ from pass to pass, so those passes saw different rows.
        Assert.True(Enumerable.Range(1, mixing.PassesStarted - 1).Count(p => !mixing.PlanForPass(p).SequenceEqual(mixing.PlanForPass(0))) >= mixing.PassesStarted - 2);
    }

    [Fact]
    public void MultiThreadedLbfgs_LoadsOnce_AndSdcaFailsOnLiveDraws()
    {
        var ml = new MLContext(1);
        var mixing = new ReplacementMixingDataView(Keyed(ml), "Label", probability: 0.5);
        ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options { LabelColumnName = "Key", NumberOfThreads = 2 }).Fit(mixing);
        Assert.Equal(1, mixing.PassesStarted);

        // SDCA indexes dual variables by row id: rows a later draw brings in are not in its table.
        var sdcaMixing = new ReplacementMixingDataView(Keyed(ml), "Label", probability: 0.5);
        Assert.ThrowsAny<Exception>(() => ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(
            new SdcaMaximumEntropyMulticlassTrainer.Options { LabelColumnName = "Key", NumberOfThreads = 1, MaximumNumberOfIterations = 5 }).Fit(sdcaMixing));
    }

    [Fact]
    public void StackedPasses_AreDifferentDraws_ReadTheSameOnEveryCursor_WithUniqueIds()
    {
        var ml = new MLContext(1);
        var keyed = Keyed(ml);
        var mixing = new ReplacementMixingDataView(keyed, "Label", probability: 0.5, seed: 4);
        var stacked = new StackedPassesDataView(keyed, mixing, passes: 3);
        Assert.Equal(180, stacked.GetRowCount());

        var ids = stacked.GetColumn<float>("Id").ToArray();
        Assert.Equal(ids, stacked.GetColumn<float>("Id").ToArray());
        Assert.Equal(180, ids.Length);
        var blocks = Enumerable.Range(0, 3).Select(p => ids.Skip(60 * p).Take(60).ToArray()).ToArray();
        Assert.NotEqual(blocks[0], blocks[1]);
        Assert.NotEqual(blocks[1], blocks[2]);
        for (int p = 0; p < 3; p++)
            Assert.Equal(mixing.PlanForPass(p).Select(r => (float)r).ToArray(), blocks[p]);
        Assert.Equal(0, mixing.PassesStarted); // planned, not drawn by cursors

        using var cursor = stacked.GetRowCursor([]);
        var idGetter = cursor.GetIdGetter();
        var rowIds = new HashSet<DataViewRowId>();
        while (cursor.MoveNext()) { DataViewRowId id = default; idGetter(ref id); rowIds.Add(id); }
        Assert.Equal(180, rowIds.Count);

        // SDCA trains on it (through a cache, as the comparison feeds it).
        var model = ClassifierTrainer.SdcaMaximumEntropy().Create(ml, Columns).Fit(ml.Data.Cache(stacked));
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(keyed), "Key");
        Assert.True(metrics.MicroAccuracy > 0.8, $"{metrics.MicroAccuracy}");
    }

    sealed class SoftRow
    {
        public string Label { get; set; } = "";
        public bool IsSynthetic { get; set; }
        public float SampleWeight { get; set; } = 1f;
        public uint SyntheticGroup { get; set; }
        public float Id { get; set; }
        [VectorType(8)] public float[] Features { get; set; } = [];
    }

    [Fact]
    public void StackedPasses_OfTwoRowImages_CountEveryRow_WithUniqueIds()
    {
        var ml = new MLContext(1);
        var random = new Random(2);
        var rows = new List<SoftRow>();
        for (int i = 0; i < 30; i++) rows.Add(new SoftRow { Label = "c" + i % 3, Id = i, Features = Enumerable.Range(0, 8).Select(_ => (float)random.NextDouble()).ToArray() });
        for (int i = 0; i < 30; i++)
            foreach (var (label, weight) in new[] { ("c" + i % 3, 0.29f), ("c" + (i + 1) % 3, 0.71f) })
                rows.Add(new SoftRow { Label = label, IsSynthetic = true, SampleWeight = weight, SyntheticGroup = (uint)(i + 1), Id = 100 + rows.Count, Features = new float[8] });
        var data = ml.Data.LoadFromEnumerable(rows);
        var mixing = new ReplacementMixingDataView(data, "Label", probability: 0.5, seed: 8);
        var stacked = new StackedPassesDataView(data, mixing, passes: 3);

        var plans = Enumerable.Range(0, 3).Select(mixing.PlanForPass).ToList();
        Assert.All(plans, p => Assert.True(p.Count > 30, "p = 0.5 over 30 originals draws some two-row images"));
        Assert.Equal(plans.Sum(p => p.Count), stacked.GetRowCount());
        Assert.Equal(plans.SelectMany(p => p).Select(r => rows[(int)r].Id).ToArray(), stacked.GetColumn<float>("Id").ToArray());
        using var cursor = stacked.GetRowCursor([]);
        var idGetter = cursor.GetIdGetter();
        var ids = new HashSet<DataViewRowId>();
        while (cursor.MoveNext()) { DataViewRowId id = default; idGetter(ref id); Assert.True(ids.Add(id)); }
        Assert.Equal(stacked.GetRowCount(), ids.Count);
    }
}
