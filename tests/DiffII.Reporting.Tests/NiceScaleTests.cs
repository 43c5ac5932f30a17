using DiffII.Reporting;

namespace DiffII.Tests.Reporting;

public class NiceScaleTests
{
    [Theory]
    [InlineData(0, 0.797, 0, 0.8, 0.2, "0.0,0.2,0.4,0.6,0.8")]
    [InlineData(0, 83, 0, 100, 20, "0,20,40,60,80,100")]
    [InlineData(-3, 7, -4, 8, 2, "-4,-2,0,2,4,6,8")]
    [InlineData(0.5, 0.62, 0.5, 0.625, 0.025, "0.500,0.525,0.550,0.575,0.600,0.625")]
    [InlineData(0, 11, 0, 12.5, 2.5, "0.0,2.5,5.0,7.5,10.0,12.5")]
    public void Covering_GivesRoundTicksThatContainTheRange(double low, double high, double min, double max, double step, string ticks)
    {
        var scale = NiceScale.Covering(low, high);
        Assert.Equal(min, scale.Min, 9);
        Assert.Equal(max, scale.Max, 9);
        Assert.Equal(step, scale.Step, 9);
        Assert.Equal(ticks, string.Join(",", scale.Ticks.Select(scale.Format)));
    }

    [Fact]
    public void Covering_WidensAnEmptyRange_AndRejectsNonFiniteOnes()
    {
        var scale = NiceScale.Covering(5, 5);
        Assert.True(scale.Min < 5 && scale.Max > 5);
        Assert.Throws<ArgumentException>(() => NiceScale.Covering(0, double.NaN));
        Assert.Throws<ArgumentException>(() => NiceScale.Covering(double.NegativeInfinity, 1));
    }
}
