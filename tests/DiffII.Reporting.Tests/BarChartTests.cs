using DiffII.Reporting;
using SkiaSharp;

namespace DiffII.Tests.Reporting;

public class BarChartTests
{
    static readonly SKColor Red = new(0xE0, 0x10, 0x10), Blue = new(0x10, 0x10, 0xE0);
    static readonly ChartStyle Style = ChartStyle.Default with { Palette = [Red, Blue] };

    [Fact]
    public void RendersAPngOfTheRequestedSize_Deterministically()
    {
        var chart = new BarChart(["Original", "Diff-II"], [new BarSeries("ID", [0.7, 0.8], [0.01, 0.02]), new BarSeries("OOD", [0.5, 0.6], [0.03, 0.01])])
        { Title = "Accuracy", YAxisTitle = "accuracy", XAxisTitle = "method", ShowValues = true };
        var png = chart.RenderPng(640, 400);
        using var bitmap = Pixels.Decode(png);
        Assert.Equal(640, bitmap.Width);
        Assert.Equal(400, bitmap.Height);
        Assert.Equal(png, chart.RenderPng(640, 400));
        Assert.Equal(new SKColor(0x1F, 0x77, 0xB4), ChartStyle.Default.SeriesColor(0));
        Assert.True(Pixels.Count(bitmap, ChartStyle.Default.SeriesColor(0)) > 1000);
        Assert.True(Pixels.Count(bitmap, ChartStyle.Default.SeriesColor(1)) > 1000);
    }

    [Fact]
    public void ALargerValue_CoversMorePixelsOfItsColour_InProportion()
    {
        var chart = new BarChart(["a", "b"], [new BarSeries("acc", [0.8, 0.4])]) { Style = Style, YMax = 1 };
        using var bitmap = Pixels.Decode(chart.RenderPng(400, 300));
        var bar = Pixels.Bounds(bitmap, Red)!.Value;
        int middle = bar.Left + bar.Width / 2;
        int left = Pixels.Count(bitmap, Red, new SKRectI(0, 0, middle, 300));
        int right = Pixels.Count(bitmap, Red, new SKRectI(middle, 0, 400, 300));
        Assert.True(right > 0);
        Assert.InRange((double)left / right, 1.9, 2.1);
    }

    [Fact]
    public void GroupsHoldOneBarPerSeries_InSeriesColours()
    {
        var chart = new BarChart(["a", "b", "c"], [new BarSeries("s0", [0.5, 0.5, 0.5]), new BarSeries("s1", [0.25, 0.25, 0.25])]) { Style = Style };
        using var bitmap = Pixels.Decode(chart.RenderPng(500, 300));
        var red = Pixels.Bounds(bitmap, Red)!.Value;
        var blue = Pixels.Bounds(bitmap, Blue)!.Value;
        // The legend swatches are the topmost pixels of each colour; below them, red bars are twice as tall as blue ones.
        int plotTop = Math.Max(red.Top, blue.Top) + 20;
        var redBars = Pixels.Count(bitmap, Red, new SKRectI(0, plotTop, 500, 300));
        var blueBars = Pixels.Count(bitmap, Blue, new SKRectI(0, plotTop, 500, 300));
        Assert.InRange((double)redBars / blueBars, 1.9, 2.1);
    }

    [Fact]
    public void ErrorBars_RiseAboveTheBarTop_ByTheStandardDeviation()
    {
        var withStd = new BarChart(["a"], [new BarSeries("acc", [0.5], [0.1])]) { Style = Style, YMax = 1 };
        var without = new BarChart(["a"], [new BarSeries("acc", [0.5])]) { Style = Style, YMax = 1 };
        using var a = Pixels.Decode(withStd.RenderPng(300, 300));
        using var b = Pixels.Decode(without.RenderPng(300, 300));
        var bar = Pixels.Bounds(a, Red)!.Value;
        Assert.Equal(bar, Pixels.Bounds(b, Red)!.Value);
        // The error bar is black, anti-aliased: count dark pixels.
        var above = new SKRectI(bar.Left, 0, bar.Right, bar.Top);
        Assert.Equal(0, Pixels.Dark(b, above));
        Assert.True(Pixels.Dark(a, above) > 5);

        // The cap sits 0.1 above the top of a bar of height 0.5: a fifth of the bar's height.
        int capRow = Enumerable.Range(0, bar.Top).First(y => Pixels.Dark(a, new SKRectI(bar.Left, y, bar.Right, y + 1)) >= 3);
        Assert.InRange(bar.Top - capRow, bar.Height / 5.0 - 2, bar.Height / 5.0 + 2);
    }

    [Fact]
    public void ValueLabels_AreDrawnAboveTheBars()
    {
        foreach (var (width, seriesCount) in new[] { (400, 1), (600, 4) })
        {
            var series = Enumerable.Range(0, seriesCount).Select(i => new BarSeries($"s{i}", [0.5], [0.05])).ToArray();
            var plain = new BarChart(["a"], series) { Style = Style, YMax = 1 };
            var labelled = new BarChart(["a"], series) { Style = Style, YMax = 1, ShowValues = true, ValueDecimals = 3 };
            using var a = Pixels.Decode(plain.RenderPng(width, 300));
            using var b = Pixels.Decode(labelled.RenderPng(width, 300));
            // Below the legend (shown for several series), the topmost red pixels are the first bar's.
            var plotArea = new SKRectI(0, 100, width, 300);
            var bar = Pixels.Bounds(b, Red, plotArea)!.Value;
            Assert.Equal(bar, Pixels.Bounds(a, Red, plotArea)!.Value);
            // The labels are the only difference, and it lies above the bars.
            int above = 0, below = 0;
            for (int y = 0; y < 300; y++)
                for (int x = 0; x < width; x++)
                    if (!Pixels.Same(a.GetPixel(x, y), b.GetPixel(x, y)))
                        _ = y < bar.Top ? above++ : below++;
            Assert.True(above > 20 * seriesCount, $"{seriesCount} series: {above} label pixels");
            Assert.Equal(0, below);
        }
    }

    [Fact]
    public void MissingValues_AreNotDrawn_ButDoNotFail()
    {
        var chart = new BarChart(["a", "b"], [new BarSeries("acc", [double.NaN, 0.4], [0.1, double.NaN])]) { Style = Style, ShowValues = true };
        using var bitmap = Pixels.Decode(chart.RenderPng(400, 300));
        var bar = Pixels.Bounds(bitmap, Red)!.Value;
        Assert.True(bar.Left > 200, "only the second category has a bar");
        // No error bar where the deviation is missing.
        Assert.Equal(0, Pixels.Count(bitmap, Style.ErrorBarColor, new SKRectI(bar.Left + 3, bar.Top - 3, bar.Right - 3, bar.Top + 40)));

        var allMissing = new BarChart(["a"], [new BarSeries("acc", [double.NaN])]) { Style = Style };
        using var empty = Pixels.Decode(allMissing.RenderPng(300, 200));
        Assert.Equal(0, Pixels.Count(empty, Red));
    }

    [Fact]
    public void LongCategoryNames_StillRender()
    {
        string[] methods = ["Original", "Real-Guidance", "DA-Fusion", "Diff-AUG", "Diff-Mix", "Diff-II", "Diff-II without the inversion pool"];
        var series = new BarSeries("ID", [.. methods.Select((_, i) => 0.7 + 0.01 * i)], [.. methods.Select(_ => 0.01)]);
        var chart = new BarChart(methods, [series]) { Title = "t" };
        using var bitmap = Pixels.Decode(chart.RenderPng(420, 360));
        Assert.Equal(420, bitmap.Width);
        // The slanted labels leave ink in the lower part of the picture.
        Assert.True(Pixels.Ink(bitmap, SKColors.White, new SKRectI(0, 250, 420, 360)) > 200);
    }

    [Fact]
    public void BadInput_IsRejectedWithClearMessages()
    {
        Assert.Throws<ArgumentException>(() => new BarChart([], [new BarSeries("s", [])]));
        Assert.Throws<ArgumentException>(() => new BarChart(["a"], []));
        var e = Assert.Throws<ArgumentException>(() => new BarChart(["a", "b"], [new BarSeries("ID", [0.5])]));
        Assert.Contains("'ID' has 1 means for 2 categories", e.Message);
        e = Assert.Throws<ArgumentException>(() => new BarChart(["a"], [new BarSeries("ID", [0.5], [0.1, 0.2])]));
        Assert.Contains("standard deviations", e.Message);
        Assert.Throws<ArgumentException>(() => new BarChart(["a"], [new BarSeries("ID", [double.PositiveInfinity])]));
        Assert.Throws<ArgumentException>(() => new BarChart(["a"], [new BarSeries("ID", [0.5], [-0.1])]));
        var ok = new BarChart(["a"], [new BarSeries("ID", [0.5])]);
        Assert.Throws<ArgumentOutOfRangeException>(() => ok.RenderPng(10, 10));
        Assert.Throws<ArgumentException>(() => new BarChart(["a"], [new BarSeries("ID", [0.5])]) { YMin = 1, YMax = 0 }.RenderPng(300, 200));
    }
}
