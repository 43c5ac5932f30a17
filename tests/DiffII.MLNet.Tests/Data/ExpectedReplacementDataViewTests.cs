using DiffII.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Tests.Data;

/// <summary>The replacement schedule in expectation: each row once, weighted by its mean count per pass of the live view.</summary>
public class ExpectedReplacementDataViewTests
{
    /// <summary>
    /// Class a: 4 originals and 2 hard-labelled images; class b: 2 originals and one soft image (0.3 a, 0.7 b, so it
    /// stands in for b); class c: 3 originals and no image; one synthetic image of class d, which has no original.
    /// </summary>
    static List<MixingRow> Rows() =>
    [
        new() { Label = "a", Id = 0 }, new() { Label = "a", Id = 1 }, new() { Label = "a", Id = 2 }, new() { Label = "a", Id = 3 },
        new() { Label = "b", Id = 4 }, new() { Label = "b", Id = 5 },
        new() { Label = "c", Id = 6 }, new() { Label = "c", Id = 7 }, new() { Label = "c", Id = 8 },
        new() { Label = "a", IsSynthetic = true, SyntheticGroup = 1, Id = 9 },
        new() { Label = "a", IsSynthetic = true, SyntheticGroup = 2, Id = 10 },
        new() { Label = "a", IsSynthetic = true, SyntheticGroup = 3, SampleWeight = 0.3f, Id = 11 },
        new() { Label = "b", IsSynthetic = true, SyntheticGroup = 3, SampleWeight = 0.7f, Id = 12 },
        new() { Label = "d", IsSynthetic = true, SyntheticGroup = 4, Id = 13 },
    ];

    [Fact]
    public void Weights_AreTheLiveViewsMeanCountsPerPass_TimesTheRowsOwnWeights()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows());
        var expected = ml.Data.ExpectedReplacement(data, "Label", probability: 0.4);

        // a: originals 1 − p, each image p · 4 / 2; b: original 1 − p, the soft image p · 2 / 1 on each of its rows;
        // c: never replaced; d's image stands in for nothing and is left out.
        double[] multiplicity = [0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 1, 1, 1, 0.8, 0.8, 0.8, 0.8, 0];
        Assert.Equal(multiplicity, expected.Multiplicities.Select(m => Math.Round(m, 12)));
        var rows = ml.Data.CreateEnumerable<MixingRow>(expected, reuseRowObject: false).ToList();
        Assert.Equal(13, expected.GetRowCount());
        Assert.Equal(Enumerable.Range(0, 13).Select(i => (float)i), rows.Select(r => r.Id));
        var source = Rows();
        Assert.Equal(rows.Select(r => source[(int)r.Id].SampleWeight * multiplicity[(int)r.Id]), rows.Select(r => (double)r.SampleWeight), new Close(1e-6));

        // The live view agrees: the mean count of each row over many passes approaches these multiplicities.
        var live = ml.Data.ReplacementMixing(data, "Label", probability: 0.4, seed: 3);
        const int passes = 4000;
        var counts = new double[source.Count];
        for (int pass = 0; pass < passes; pass++)
            foreach (long row in live.PlanForPass(pass)) counts[row]++;
        for (int row = 0; row < source.Count; row++)
            Assert.InRange(counts[row] / passes, multiplicity[row] - 0.04, multiplicity[row] + 0.04);
    }

    [Fact]
    public void WithoutAWeightColumn_OneIsAdded_AndOtherColumnsPassThrough()
    {
        var ml = new MLContext(1);
        var unweighted = new List<HardMixingRow>
        {
            new() { Label = "a", Id = 0 }, new() { Label = "a", Id = 1 }, new() { Label = "b", Id = 2 },
            new() { Label = "a", IsSynthetic = true, Id = 3 },
        };
        var view = ml.Data.ExpectedReplacement(ml.Data.LoadFromEnumerable(unweighted), "Label", probability: 0.5, syntheticGroupColumnName: null);
        Assert.Equal(["Label", "IsSynthetic", "Id", "SampleWeight"], view.Schema.Select(c => c.Name));
        Assert.Equal([0.5f, 0.5f, 1f, 1f], view.GetColumn<float>("SampleWeight"));
        Assert.Equal([0f, 1f, 2f, 3f], view.GetColumn<float>("Id"));
        Assert.Equal(["a", "a", "b", "a"], view.GetColumn<string>("Label"));
    }

    [Fact]
    public void BadColumns_AreNamed()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Rows());
        Assert.Contains("'Flag'", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Data.ExpectedReplacement(data, "Label", isSyntheticColumnName: "Flag")).Message);
        Assert.Contains("'Id'", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Data.ExpectedReplacement(data, "Label", syntheticGroupColumnName: "Id")).Message);
    }

    sealed class Close(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;
        public int GetHashCode(double value) => 0;
    }
}
