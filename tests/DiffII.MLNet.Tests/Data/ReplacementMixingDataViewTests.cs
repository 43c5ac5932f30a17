using DiffII.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Tests.Data;

public class ReplacementMixingDataViewTests
{
    sealed class Row
    {
        public string Label { get; set; } = "";
        public bool IsSynthetic { get; set; }
        public float Id { get; set; }
    }

    /// <summary>200 originals in 4 classes, then 5 synthetic rows per original (expansion rate 5).</summary>
    static IDataView Data(MLContext ml)
    {
        var rows = new List<Row>();
        for (int i = 0; i < 200; i++) rows.Add(new Row { Label = "c" + (i % 4), Id = i });
        for (int i = 0; i < 1000; i++) rows.Add(new Row { Label = "c" + (i % 4), IsSynthetic = true, Id = 1000 + i });
        return ml.Data.LoadFromEnumerable(rows);
    }

    [Fact]
    public void EachPass_HasOneRowPerOriginal_KeepsTheClass_AndReplacesAboutP()
    {
        var ml = new MLContext(1);
        var mixed = new ReplacementMixingDataView(Data(ml), "Label", probability: 0.5, seed: 3);
        Assert.Equal(200, mixed.GetRowCount());
        int replaced = 0;
        for (int pass = 0; pass < 10; pass++)
        {
            // One cursor is one pass, so read both columns from the same cursor.
            var rows = ml.Data.CreateEnumerable<Row>(mixed, reuseRowObject: false).ToArray();
            var labels = rows.Select(r => r.Label).ToArray();
            var ids = rows.Select(r => r.Id).ToArray();
            Assert.Equal(200, ids.Length);
            // Every class keeps its count: replacements stay within the class.
            Assert.All(Enumerable.Range(0, 4), c => Assert.Equal(50, labels.Count(l => l == "c" + c)));
            Assert.All(ids.Zip(labels), p => Assert.Equal("c" + ((int)p.First % 1000 % 4), p.Second));
            replaced += ids.Count(id => id >= 1000);
        }
        // 2000 draws at p = 0.5: the count is within ±4 standard deviations (σ ≈ 22.4).
        Assert.InRange(replaced, 1000 - 90, 1000 + 90);
        Assert.Equal(10, mixed.PassesStarted);
    }

    [Fact]
    public void Passes_DrawDifferentRows_ButTheSamePassIsReproducible()
    {
        var ml = new MLContext(1);
        var a = new ReplacementMixingDataView(Data(ml), "Label", seed: 9);
        var b = new ReplacementMixingDataView(Data(ml), "Label", seed: 9);
        Assert.NotEqual(a.PlanForPass(0), a.PlanForPass(1));
        Assert.Equal(a.PlanForPass(4), b.PlanForPass(4));
        Assert.Equal(a.PlanForPass(0), a.GetColumn<float>("Id").Select(id => id >= 1000 ? (long)(id - 1000 + 200) : (long)id).ToList());
    }

    [Theory]
    [InlineData(0.0, 0)]
    [InlineData(1.0, 200)]
    public void ProbabilityZeroKeepsOriginals_OneReplacesAll(double p, int expectedSynthetic)
    {
        var ml = new MLContext(1);
        var mixed = new ReplacementMixingDataView(Data(ml), "Label", probability: p);
        Assert.Equal(expectedSynthetic, mixed.GetColumn<bool>("IsSynthetic").Count(x => x));
    }

    [Fact]
    public void ClassWithoutSyntheticRows_KeepsItsOriginals()
    {
        var ml = new MLContext(1);
        var rows = new[] { new Row { Label = "a" }, new Row { Label = "b" }, new Row { Label = "a", IsSynthetic = true, Id = 5 } };
        var mixed = new ReplacementMixingDataView(ml.Data.LoadFromEnumerable(rows), "Label", probability: 1.0);
        // "a" is replaced by its synthetic row (which comes later in source order); "b" has none and stays.
        var result = ml.Data.CreateEnumerable<Row>(mixed, reuseRowObject: false).ToArray();
        Assert.Equal(["b", "a"], result.Select(r => r.Label).ToArray());
        Assert.Equal([false, true], result.Select(r => r.IsSynthetic).ToArray());
    }

    [Fact]
    public void BadArguments_AreNamed()
    {
        var ml = new MLContext(1);
        Assert.Contains("'Nope'", Assert.Throws<ArgumentOutOfRangeException>(() => new ReplacementMixingDataView(Data(ml), "Nope")).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplacementMixingDataView(Data(ml), "Label", probability: 1.5));
        Assert.Contains("'Id'", Assert.Throws<ArgumentOutOfRangeException>(() => new ReplacementMixingDataView(Data(ml), "Label", isSyntheticColumn: "Id")).Message);
    }
}
