using DiffII.Experiments.Tiny;

namespace DiffII.Experiments.Tests;

public class AugmentationVerdictTests
{
    static SummaryRow Row(string method, int seeds, double inMean, double inStd, double shiftedMean, double shiftedStd) =>
        new("L-BFGS", 5, method, 0.5, seeds, inMean, inStd, shiftedMean, shiftedStd, null, null, 0);

    [Fact]
    public void OneSeed_GivesTheDifferenceAndSaysTheSpreadIsUnknown()
    {
        var summary = new[] { Row("original", 1, 0.537, double.NaN, 0.293, double.NaN), Row("diff-ii", 1, 0.490, double.NaN, 0.237, double.NaN) };
        var sentence = Assert.Single(AugmentationVerdict.Sentences(summary, "L-BFGS", [5]));
        Assert.Equal("5-shot, L-BFGS: diff-ii vs original: −4.7 points in-distribution (49.0 vs 53.7 %), −5.6 shifted (23.7 vs 29.3 %): " +
                     "lower on both test sets; with 1 seed the seed-to-seed spread is unknown (--seeds 1,2,3 measures it).", sentence);
    }

    [Fact]
    public void SeveralSeeds_SayHelpedHurtOrWithinTheSpread()
    {
        var summary = new[]
        {
            Row("original", 3, 0.50, 0.01, 0.30, 0.02),
            Row("diff-ii", 3, 0.56, 0.02, 0.35, 0.01),       // +6 and +5 points, spreads 2: helped on both
            Row("real-guidance", 3, 0.44, 0.01, 0.29, 0.03), // −6 (spread 1): hurt; −1 (spread 3): within
        };
        var sentences = AugmentationVerdict.Sentences(summary, "L-BFGS", [5]);
        Assert.Equal(2, sentences.Count);
        Assert.EndsWith(": it helped on both test sets.", sentences[0]);
        Assert.EndsWith(": in-distribution hurt, shifted within the seed spread (±3.0).", sentences[1]);
        Assert.Empty(AugmentationVerdict.Sentences(summary, "SDCA", [5]));
    }
}
