using DiffII.Reporting;
using SkiaSharp;

namespace DiffII.Tests.Reporting;

public class ScatterChartTests
{
    static readonly SKColor Red = new(0xE0, 0x10, 0x10), Blue = new(0x10, 0x10, 0xE0);
    static readonly ChartStyle Style = ChartStyle.Default with { Palette = [Red, Blue] };

    static SKPointI Centroid(SKBitmap bitmap, SKColor color, SKRectI region)
    {
        long sx = 0, sy = 0, n = 0;
        for (int y = region.Top; y < region.Bottom; y++)
            for (int x = region.Left; x < region.Right; x++)
                if (Pixels.Same(bitmap.GetPixel(x, y), color)) { sx += x; sy += y; n++; }
        Assert.True(n > 0, $"no pixels of {color}");
        return new SKPointI((int)(sx / n), (int)(sy / n));
    }

    [Fact]
    public void PointsLandWhereTheirCoordinatesSay()
    {
        var chart = new ScatterChart([
            new ScatterSeries("low", [new(0.1, 0.1, "s=0.2")]),
            new ScatterSeries("high", [new(0.9, 0.9, "s=0.8")]),
        ]) { Style = Style, XMin = 0, XMax = 1, YMin = 0, YMax = 1, XAxisTitle = "diversity", YAxisTitle = "faithfulness", Title = "t" };
        var png = chart.RenderPng(500, 400);
        using var bitmap = Pixels.Decode(png);
        Assert.Equal((500, 400), (bitmap.Width, bitmap.Height));
        Assert.Equal(png, chart.RenderPng(500, 400));
        // Below the title and legend (top 90 rows) the only red/blue pixels are the markers and their labels.
        var plot = new SKRectI(0, 90, 500, 400);
        var low = Centroid(bitmap, Red, plot);
        var high = Centroid(bitmap, Blue, plot);
        Assert.True(high.X - low.X > 250, $"{low} {high}");
        Assert.True(low.Y - high.Y > 180, $"{low} {high}");
        // The markers are small.
        Assert.InRange(Pixels.Count(bitmap, Red, plot), 20, 120);
    }

    [Fact]
    public void ConnectPoints_DrawsALineBetweenThem()
    {
        ScatterPoint[] points = [new(0, 0), new(1, 1)];
        var lines = new ScatterChart([new ScatterSeries("s", points, ConnectPoints: true)]) { Style = Style, ShowPointLabels = false };
        var dots = new ScatterChart([new ScatterSeries("s", points, ConnectPoints: false)]) { Style = Style, ShowPointLabels = false };
        using var a = Pixels.Decode(lines.RenderPng(400, 400));
        using var b = Pixels.Decode(dots.RenderPng(400, 400));
        var span = Pixels.Bounds(b, Red)!.Value;
        var middle = SKRectI.Create(span.MidX - 10, span.MidY - 10, 20, 20);
        Assert.Equal(0, Pixels.Count(b, Red, middle));
        Assert.True(Pixels.Count(a, Red, middle) > 10);
    }

    [Fact]
    public void MissingPoints_AreSkipped_AndLabelsAreDrawn()
    {
        var withLabels = new ScatterChart([new ScatterSeries("s", [new(0, 0, "first"), new(double.NaN, 1, "gone"), new(1, 1, "last")], true)]) { Style = Style };
        var noLabels = new ScatterChart(withLabels.Series) { Style = Style, ShowPointLabels = false };
        using var a = Pixels.Decode(withLabels.RenderPng(400, 300));
        using var b = Pixels.Decode(noLabels.RenderPng(400, 300));
        int Ink(SKBitmap bmp) => Pixels.Ink(bmp, SKColors.White, new SKRectI(0, 0, 400, 300));
        Assert.True(Ink(a) - Ink(b) > 40);
    }

    [Fact]
    public void BadInput_IsRejected()
    {
        Assert.Throws<ArgumentException>(() => new ScatterChart([]));
        var e = Assert.Throws<ArgumentException>(() => new ScatterChart([new ScatterSeries("Diff-II", [])]));
        Assert.Contains("Diff-II", e.Message);
        Assert.Throws<ArgumentException>(() => new ScatterChart([new ScatterSeries("s", [new(double.PositiveInfinity, 0)])]));
        var ok = new ScatterChart([new ScatterSeries("s", [new(0, 0)])]) { XMin = 1, XMax = 0 };
        Assert.Throws<ArgumentException>(() => ok.RenderPng(300, 300));
        // A single point, or only missing points, still renders.
        Assert.NotEmpty(new ScatterChart([new ScatterSeries("s", [new(3, 3)])]).RenderPng(300, 300));
        Assert.NotEmpty(new ScatterChart([new ScatterSeries("s", [new(double.NaN, 3)])]).RenderPng(300, 300));
    }
}
