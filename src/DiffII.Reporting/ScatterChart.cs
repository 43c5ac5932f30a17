using SkiaSharp;

namespace DiffII.Reporting;

/// <summary>A point; a NaN coordinate marks it missing (not drawn, noted under the chart).</summary>
public sealed record ScatterPoint(double X, double Y, string? Label = null);

/// <summary>A series of points, e.g. one method as the split ratio varies; <paramref name="ConnectPoints"/> joins them in the given order.</summary>
public sealed record ScatterSeries(string Name, IReadOnlyList<ScatterPoint> Points, bool ConnectPoints = false);

/// <summary>Points with labels, optional connecting lines per series, axis titles, legend and round ticks. Renders deterministically to PNG.</summary>
public sealed class ScatterChart
{
    const float MarkerRadius = 4.5f;
    readonly ScatterSeries[] series;

    /// <exception cref="ArgumentException">No series, a series without points, or infinite coordinates.</exception>
    public ScatterChart(IReadOnlyList<ScatterSeries> series)
    {
        ArgumentNullException.ThrowIfNull(series);
        if (series.Count == 0) throw new ArgumentException("A scatter chart needs at least one series.", nameof(series));
        for (int s = 0; s < series.Count; s++)
        {
            var one = series[s] ?? throw new ArgumentException($"Series {s} is null.", nameof(series));
            string name = one.Name ?? throw new ArgumentException($"Series {s} has no name.", nameof(series));
            if (one.Points is null || one.Points.Count == 0) throw new ArgumentException($"Series '{name}' has no points.", nameof(series));
            for (int p = 0; p < one.Points.Count; p++)
            {
                var point = one.Points[p] ?? throw new ArgumentException($"Series '{name}', point {p} is null.", nameof(series));
                if (double.IsInfinity(point.X) || double.IsInfinity(point.Y))
                    throw new ArgumentException($"Series '{name}', point {p} ({point.X}, {point.Y}) has an infinite coordinate.", nameof(series));
            }
        }
        this.series = [.. series.Select(s => s with { Points = [.. s.Points] })];
    }

    public IReadOnlyList<ScatterSeries> Series => series;
    public string? Title { get; init; }
    public string? XAxisTitle { get; init; }
    public string? YAxisTitle { get; init; }
    public double? XMin { get; init; }
    public double? XMax { get; init; }
    public double? YMin { get; init; }
    public double? YMax { get; init; }
    /// <summary>Writes each point's label next to it (placed to avoid other labels and markers).</summary>
    public bool ShowPointLabels { get; init; } = true;
    /// <summary>Shows the legend even for a single series (it is always shown for two or more).</summary>
    public bool AlwaysShowLegend { get; init; }
    public ChartStyle Style { get; init; } = ChartStyle.Default;

    public byte[] RenderPng(int width, int height)
    {
        CheckLimits(XMin, XMax, "X");
        CheckLimits(YMin, YMax, "Y");
        using var chart = new ChartCanvas(width, height, Style);
        var text = chart.Text;
        var style = Style;
        var canvas = chart.Canvas;
        float m = style.Margin;

        var present = series.SelectMany(s => s.Points).Where(p => !double.IsNaN(p.X) && !double.IsNaN(p.Y)).ToList();
        int missing = series.Sum(s => s.Points.Count) - present.Count;
        var notes = new List<string>();
        if (missing > 0) notes.Add($"{missing} point{(missing == 1 ? "" : "s")} with a missing (NaN) coordinate not shown.");

        float top = m;
        float titleHeight = chart.DrawTitle(Title, top);
        if (titleHeight > 0) top += titleHeight + 6;
        if (series.Length > 1 || AlwaysShowLegend)
        {
            var legend = series.Select((s, i) => new LegendEntry(s.Name, (cv, cx, cy, size) =>
            {
                if (s.ConnectPoints)
                {
                    using var line = new SKPaint { Color = style.SeriesColor(i), StrokeWidth = 2, IsAntialias = true, Style = SKPaintStyle.Stroke };
                    cv.DrawLine(cx - size / 2 - 2, cy, cx + size / 2 + 2, cy, line);
                }
                DrawMarker(cv, cx, cy, i, style);
            })).ToList();
            top += chart.Legend(legend, top, draw: true) + 8;
        }
        else top += 6;

        double xLow = present.Count > 0 ? present.Min(p => p.X) : 0, xHigh = present.Count > 0 ? present.Max(p => p.X) : 1;
        double yLow = present.Count > 0 ? present.Min(p => p.Y) : 0, yHigh = present.Count > 0 ? present.Max(p => p.Y) : 1;
        var yScale = AxisScale(yLow, yHigh, YMin, YMax, 6);

        float notesHeight = chart.Notes(notes, height - m, draw: false);
        float xTitleHeight = string.IsNullOrWhiteSpace(XAxisTitle) ? 0 : text.LineHeight(style.AxisTitleSize) + 4;
        float tickLabelHeight = text.LineHeight(style.TickLabelSize);
        float plotLeft = m + chart.YAxisWidth(YAxisTitle, yScale);
        // Room on the right for half of the last x tick label.
        float plotRight = width - m - 12;
        float plotBottom = height - m - notesHeight - (notesHeight > 0 ? 6 : 0) - xTitleHeight - tickLabelHeight - ChartCanvas.TickLength - 4;
        if (plotBottom - top < 40 || plotRight - plotLeft < 40)
            throw new ArgumentException($"A {width}×{height} picture leaves no room for the plot; make it larger or the labels shorter.");
        var plot = new SKRect(plotLeft, top, plotRight, plotBottom);

        // Fewer x ticks when their labels would touch.
        NiceScale xScale = AxisScale(xLow, xHigh, XMin, XMax, 7);
        for (int target = 6; target >= 2 && !XLabelsFit(text, xScale, plot.Width); target--)
            xScale = AxisScale(xLow, xHigh, XMin, XMax, target);

        float ToX(double v) => plot.Left + (float)((v - xScale.Min) / (xScale.Max - xScale.Min)) * plot.Width;
        float ToY(double v) => plot.Bottom - (float)((v - yScale.Min) / (yScale.Max - yScale.Min)) * plot.Height;

        chart.DrawYAxis(plot, yScale, ToY, YAxisTitle, m);
        DrawXAxis(chart, plot, xScale, ToX);

        int saved = canvas.Save();
        canvas.ClipRect(new SKRect(plot.Left - MarkerRadius - 1, plot.Top - MarkerRadius - 1, plot.Right + MarkerRadius + 1, plot.Bottom + MarkerRadius + 1));
        for (int s = 0; s < series.Length; s++)
        {
            if (!series[s].ConnectPoints) continue;
            using var line = new SKPaint { Color = style.SeriesColor(s), StrokeWidth = 2, IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeJoin = SKStrokeJoin.Round };
            using var path = new SKPath();
            bool open = false;
            foreach (var p in series[s].Points)
            {
                if (double.IsNaN(p.X) || double.IsNaN(p.Y)) { open = false; continue; } // a missing point breaks the line
                if (open) path.LineTo(ToX(p.X), ToY(p.Y));
                else { path.MoveTo(ToX(p.X), ToY(p.Y)); open = true; }
            }
            canvas.DrawPath(path, line);
        }
        // Markers and (sampled) connecting lines are obstacles for the point labels.
        var markers = new List<SKRect>();
        for (int s = 0; s < series.Length; s++)
        {
            if (!series[s].ConnectPoints) continue;
            ScatterPoint? previous = null;
            foreach (var p in series[s].Points)
            {
                if (double.IsNaN(p.X) || double.IsNaN(p.Y)) { previous = null; continue; }
                if (previous is not null)
                {
                    float x0 = ToX(previous.X), y0 = ToY(previous.Y), x1 = ToX(p.X), y1 = ToY(p.Y);
                    int steps = Math.Max(1, (int)(MathF.Sqrt((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)) / 3));
                    for (int i = 0; i <= steps; i++)
                    {
                        float t = (float)i / steps, x = x0 + t * (x1 - x0), y = y0 + t * (y1 - y0);
                        markers.Add(new SKRect(x - 1.5f, y - 1.5f, x + 1.5f, y + 1.5f));
                    }
                }
                previous = p;
            }
        }
        for (int s = 0; s < series.Length; s++)
            foreach (var p in series[s].Points)
            {
                if (double.IsNaN(p.X) || double.IsNaN(p.Y)) continue;
                float x = ToX(p.X), y = ToY(p.Y);
                DrawMarker(canvas, x, y, s, style);
                markers.Add(new SKRect(x - MarkerRadius, y - MarkerRadius, x + MarkerRadius, y + MarkerRadius));
            }
        canvas.RestoreToCount(saved);

        if (ShowPointLabels) DrawPointLabels(chart, plot, markers, ToX, ToY);

        if (xTitleHeight > 0)
            text.Draw(canvas, text.Truncate(XAxisTitle!, style.AxisTitleSize, plot.Width), (plot.Left + plot.Right) / 2,
                plot.Bottom + ChartCanvas.TickLength + 4 + tickLabelHeight + 4, style.AxisTitleSize, style.TextColor, TextAlign.Center);
        chart.Notes(notes, height - m, draw: true);
        return chart.EncodePng();
    }

    static void CheckLimits(double? min, double? max, string axis)
    {
        if (min is { } a && !double.IsFinite(a)) throw new ArgumentException($"{axis}Min must be finite; got {a}.");
        if (max is { } b && !double.IsFinite(b)) throw new ArgumentException($"{axis}Max must be finite; got {b}.");
        if (min is { } lo && max is { } hi && !(lo < hi)) throw new ArgumentException($"{axis}Min ({lo}) must be below {axis}Max ({hi}).");
    }

    static NiceScale AxisScale(double low, double high, double? fixedMin, double? fixedMax, int targetTicks)
    {
        // A little air so markers do not sit on the frame.
        double pad = (high - low) * 0.04;
        double lo = fixedMin ?? low - pad, hi = fixedMax ?? high + pad;
        var nice = NiceScale.Covering(lo, hi, targetTicks);
        return nice with { Min = fixedMin ?? nice.Min, Max = fixedMax ?? nice.Max };
    }

    bool XLabelsFit(TextRenderer text, NiceScale scale, float plotWidth)
    {
        var ticks = scale.Ticks;
        if (ticks.Count < 2) return true;
        float spacing = plotWidth * (float)(scale.Step / (scale.Max - scale.Min));
        float widest = ticks.Max(t => text.MeasureWidth(scale.Format(t), Style.TickLabelSize));
        return widest + 10 <= spacing;
    }

    void DrawXAxis(ChartCanvas chart, SKRect plot, NiceScale scale, Func<double, float> toX)
    {
        var style = Style;
        using var grid = new SKPaint { Color = style.GridColor, StrokeWidth = 1, IsAntialias = false, Style = SKPaintStyle.Stroke };
        using var axis = new SKPaint { Color = style.AxisColor, StrokeWidth = 1, IsAntialias = false, Style = SKPaintStyle.Stroke };
        foreach (var tick in scale.Ticks)
        {
            float x = ChartCanvas.Crisp(toX(tick));
            if (x < plot.Left - 0.5f || x > plot.Right + 0.5f) continue;
            chart.Canvas.DrawLine(x, plot.Top, x, plot.Bottom, grid);
            chart.Canvas.DrawLine(x, plot.Bottom, x, plot.Bottom + ChartCanvas.TickLength, axis);
            chart.Text.Draw(chart.Canvas, scale.Format(tick), x, plot.Bottom + ChartCanvas.TickLength + 3, style.TickLabelSize, style.TextColor, TextAlign.Center);
        }
        float yb = ChartCanvas.Crisp(plot.Bottom);
        chart.Canvas.DrawLine(plot.Left, yb, plot.Right, yb, axis);
    }

    void DrawPointLabels(ChartCanvas chart, SKRect plot, List<SKRect> markers, Func<double, float> toX, Func<double, float> toY)
    {
        var text = chart.Text;
        float size = Math.Max(8, Style.TickLabelSize - 1), lh = text.LineHeight(size);
        var placed = new List<SKRect>();
        var bounds = new SKRect(plot.Left, plot.Top, chart.Width - Style.Margin, plot.Bottom);
        for (int s = 0; s < series.Length; s++)
        {
            var colour = Darker(Style.SeriesColor(s));
            foreach (var p in series[s].Points)
            {
                if (string.IsNullOrEmpty(p.Label) || double.IsNaN(p.X) || double.IsNaN(p.Y)) continue;
                float x = toX(p.X), y = toY(p.Y), w = text.MeasureWidth(p.Label, size), d = MarkerRadius + 3;
                SKRect[] candidates =
                [
                    SKRect.Create(x + d, y - lh + 2, w, lh),       // upper right
                    SKRect.Create(x + d, y - 2, w, lh),            // lower right
                    SKRect.Create(x - d - w, y - lh + 2, w, lh),   // upper left
                    SKRect.Create(x - d - w, y - 2, w, lh),        // lower left
                    SKRect.Create(x - w / 2, y - d - lh, w, lh),   // above
                    SKRect.Create(x - w / 2, y + d, w, lh),        // below
                ];
                SKRect best = candidates[0];
                float bestCost = float.MaxValue;
                foreach (var r in candidates)
                {
                    float cost = placed.Sum(o => Overlap(r, o)) + markers.Sum(o => Overlap(r, o)) + (r.Width * r.Height - Overlap(r, bounds)) * 2;
                    if (cost < bestCost) { bestCost = cost; best = r; }
                }
                placed.Add(best);
                text.Draw(chart.Canvas, p.Label, best.Left, best.Top, size, colour);
            }
        }
    }

    static float Overlap(SKRect a, SKRect b)
    {
        float w = Math.Min(a.Right, b.Right) - Math.Max(a.Left, b.Left), h = Math.Min(a.Bottom, b.Bottom) - Math.Max(a.Top, b.Top);
        return w > 0 && h > 0 ? w * h : 0;
    }

    static SKColor Darker(SKColor c) => new((byte)(c.Red * 0.7), (byte)(c.Green * 0.7), (byte)(c.Blue * 0.7));

    /// <summary>Series are told apart by shape as well as colour: circle, square, triangle, diamond, inverted triangle.</summary>
    static void DrawMarker(SKCanvas canvas, float x, float y, int seriesIndex, ChartStyle style)
    {
        using var fill = new SKPaint { Color = style.SeriesColor(seriesIndex), IsAntialias = true, Style = SKPaintStyle.Fill };
        using var outline = new SKPaint { Color = style.Background, IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        float r = MarkerRadius;
        using var path = new SKPath();
        switch (seriesIndex % 5)
        {
            case 0: path.AddCircle(x, y, r); break;
            case 1: path.AddRect(new SKRect(x - r * 0.9f, y - r * 0.9f, x + r * 0.9f, y + r * 0.9f)); break;
            case 2: path.MoveTo(x, y - r * 1.15f); path.LineTo(x + r * 1.1f, y + r * 0.8f); path.LineTo(x - r * 1.1f, y + r * 0.8f); path.Close(); break;
            case 3: path.MoveTo(x, y - r * 1.2f); path.LineTo(x + r * 1.2f, y); path.LineTo(x, y + r * 1.2f); path.LineTo(x - r * 1.2f, y); path.Close(); break;
            default: path.MoveTo(x, y + r * 1.15f); path.LineTo(x + r * 1.1f, y - r * 0.8f); path.LineTo(x - r * 1.1f, y - r * 0.8f); path.Close(); break;
        }
        canvas.DrawPath(path, fill);
        canvas.DrawPath(path, outline);
    }
}
