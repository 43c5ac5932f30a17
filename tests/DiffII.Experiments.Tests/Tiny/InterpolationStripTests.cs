using DiffII.Experiments.Tiny;

namespace DiffII.Experiments.Tests;

/// <summary>The report's interpolation strip (the paper's Fig. 4) shows both source inversions.</summary>
public class InterpolationStripTests
{
    [Theory]
    [InlineData(0.37 * Math.PI)]
    [InlineData(0.9 * Math.PI)]
    [InlineData(0.05)]
    public void ThePhasesHoldZeroAndTheta_InOrder(double theta)
    {
        var phis = TinyExperimentReport.StripPhases(theta);
        Assert.Equal(TinyExperimentReport.StripGridPoints + 1, phis.Length);
        Assert.Equal(phis.Order(), phis);
        Assert.Contains(0.0, phis);
        Assert.Contains(theta, phis);
        Assert.True(phis[0] >= -Math.PI / 2 && phis[^1] < 1.5 * Math.PI);
        Assert.Equal("φ=0 (z1)", TinyExperimentReport.StripCaption(0.0, theta));
        Assert.Equal("φ=θ (z2)", TinyExperimentReport.StripCaption(theta, theta));
    }

    [Fact]
    public void AThetaOnTheGrid_IsNotShownTwice_AndOtherPhasesAreInvariantFractionsOfPi()
    {
        var phis = TinyExperimentReport.StripPhases(Math.PI / 2);
        Assert.Equal(TinyExperimentReport.StripGridPoints, phis.Length);
        Assert.Equal("φ=θ (z2)", TinyExperimentReport.StripCaption(Math.PI / 2, Math.PI / 2));
        var culture = Thread.CurrentThread.CurrentCulture;
        try
        {
            Thread.CurrentThread.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
            Assert.Equal("φ=1.50π", TinyExperimentReport.StripCaption(1.5 * Math.PI, 0.3));
        }
        finally
        {
            Thread.CurrentThread.CurrentCulture = culture;
        }
    }
}
