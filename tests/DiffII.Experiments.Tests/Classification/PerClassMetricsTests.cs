using DiffII.Experiments.Classification;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Tests.Classification;

public sealed class PerClassMetricsTests
{
    sealed class Scored
    {
        public string Label { get; set; } = "";
        public string Predicted { get; set; } = "";
        [VectorType(3)] public float[] Score { get; set; } = [];
    }

    sealed class ClassName
    {
        public string Name { get; set; } = "";
    }

    [Fact]
    public void PerClassAccuracy_IsTheConfusionMatrixRowRatio_RareClassVisible()
    {
        string[] classes = ["common", "mid", "rare"];
        // Actual → predicted: "common" 6 of 6 right; "mid" 2 of 3 (one called common); "rare" 0 of 1 (called common).
        (int Actual, int Predicted)[] pairs = [(0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (1, 1), (1, 1), (1, 0), (2, 0)];
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(pairs.Select(p => new Scored
        {
            Label = classes[p.Actual],
            Predicted = classes[p.Predicted],
            Score = Enumerable.Range(0, 3).Select(k => k == p.Predicted ? 0.8f : 0.1f).ToArray(),
        }).ToList());
        // Both columns keyed by the same class list, in this order.
        var keyData = ml.Data.LoadFromEnumerable(classes.Select(c => new ClassName { Name = c }));
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label", keyData: keyData)
            .Append(ml.Transforms.Conversion.MapValueToKey("PredictedLabel", "Predicted", keyData: keyData))
            .Fit(data).Transform(data);
        var metrics = ml.MulticlassClassification.Evaluate(keyed, "Label", "Score", "PredictedLabel");

        var perClass = PerClassMetrics.FromMetrics(metrics, keyed.Schema["Label"]);
        Assert.Equal(classes, perClass.Select(c => c.ClassName).ToArray());
        Assert.Equal([6.0, 3.0, 1.0], perClass.Select(c => c.Support).ToArray());
        Assert.Equal([6.0, 2.0, 0.0], perClass.Select(c => c.Correct).ToArray());
        Assert.Equal(1.0, perClass[0].Accuracy, 12);
        Assert.Equal(2.0 / 3, perClass[1].Accuracy, 12);
        Assert.Equal(0.0, perClass[2].Accuracy, 12);
        Assert.Equal(6.0 / 8, perClass[0].Precision, 12);
        Assert.Equal(1.0, perClass[1].Precision, 12);
        Assert.True(double.IsNaN(perClass[2].Precision)); // never predicted
        Assert.Equal(metrics.MacroAccuracy, perClass.Average(c => c.Accuracy), 12);
        Assert.Equal(0.8, metrics.MicroAccuracy, 12);

        string table = PerClassMetrics.ToTable(perClass);
        var lines = table.TrimEnd('\n').Split('\n');
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("rare", lines[1]); // rarest first
        Assert.Contains("0.6667", table);

        Assert.Contains("3 classes", Assert.Throws<ArgumentException>(() => PerClassMetrics.FromConfusionMatrix(metrics.ConfusionMatrix, ["a", "b"])).Message);
    }

    [Fact]
    public void ClassNames_ComeFromTheKeyValues()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new Scored { Label = "zebra" }, new Scored { Label = "ant" } });
        var keyed = ml.Transforms.Conversion.MapValueToKey("Key", "Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Fit(data).Transform(data);
        Assert.Equal(["ant", "zebra"], PerClassMetrics.ClassNames(keyed.Schema["Key"]));
        Assert.Contains("'Label'", Assert.Throws<ArgumentException>(() => PerClassMetrics.ClassNames(keyed.Schema["Label"])).Message);
    }
}
