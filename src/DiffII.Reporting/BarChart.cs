using SkiaSharp;

namespace DiffII.Reporting;

/// <summary>
/// One group member of a bar chart, e.g. "in-distribution" accuracy: one mean per category, optionally ± a standard
/// deviation. A NaN mean is a missing value (drawn as "n/a"); a NaN or absent deviation draws no error bar.
/// </summary>
public sealed record BarSeries(string Name, IReadOnlyList<double> Means, IReadOnlyList<double>? StdDevs = null);

/// <summary>
/// Grouped bars with error bars: one group per category (e.g. a method), one bar per series (e.g. a test set).
/// Renders deterministically to PNG.
/// </summary>
public sealed class BarChart
{
    const double SqrtHalf = 0.70710678118654752;
    readonly string[] categories;
    readonly BarSeries[] series;

    /// <exception cref="ArgumentException">No categories or series, lengths that do not match, infinite values or negative deviations.</exception>
    public BarChart(IReadOnlyList<string> categories, IReadOnlyList<BarSeries> series)
    {
        ArgumentNullException.ThrowIfNull(categories);
        ArgumentNullException.ThrowIfNull(series);
        if (categories.Count == 0) throw new ArgumentException("A bar chart needs at least one category.", nameof(categories));
        if (series.Count == 0) throw new ArgumentException("A bar chart needs at least one series.", nameof(series));
        for (int c = 0; c < categories.Count; c++)
            if (categories[c] is null) throw new ArgumentException($"Category {c} is null.", nameof(categories));
        for (int s = 0; s < series.Count; s++)
        {
            var one = series[s] ?? throw new ArgumentException($"Series {s} is null.", nameof(series));
            string name = one.Name ?? throw new ArgumentException($"Series {s} has no name.", nameof(series));
            if (one.Means is null || one.Means.Count != categories.Count)
                throw new ArgumentException($"Series '{name}' has {one.Means?.Count ?? 0} means for {categories.Count} categories.", nameof(series));
            if (one.StdDevs is not null && one.StdDevs.Count != categories.Count)
                throw new ArgumentException($"Series '{name}' has {one.StdDevs.Count} standard deviations for {categories.Count} categories.", nameof(series));
            for (int c = 0; c < categories.Count; c++)
            {
                if (double.IsInfinity(one.Means[c]))
                    throw new ArgumentException($"Series '{name}', category '{categories[c]}': the mean is infinite.", nameof(series));
                if (one.StdDevs is { } sd && (double.IsInfinity(sd[c]) || sd[c] < 0))
                    throw new ArgumentException($"Series '{name}', category '{categories[c]}': the standard deviation {sd[c]} is not a finite non-negative number.", nameof(series));
            }
        }
        this.categories = [.. categories];
        this.series = [.. series.Select(s => s with { Means = [.. s.Means], StdDevs = s.StdDevs is null ? null : [.. s.StdDevs] })];
    }

    public IReadOnlyList<string> Categories => categories;
    public IReadOnlyList<BarSeries> Series => series;

    public string? Title { get; init; }
    public string? YAxisTitle { get; init; }
    public string? XAxisTitle { get; init; }
    /// <summary>Writes each mean above its bar (and error bar).</summary>
    public bool ShowValues { get; init; }
    public int ValueDecimals { get; init; } = 2;
    /// <summary>Fixes the bottom of the value axis (by default 0, or lower if values are negative).</summary>
    public double? YMin { get; init; }
    /// <summary>Fixes the top of the value axis.</summary>
    public double? YMax { get; init; }
    /// <summary>Shows the legend even for a single series (it is always shown for two or more).</summary>
    public bool AlwaysShowLegend { get; init; }
    public ChartStyle Style { get; init; } = ChartStyle.Default;

    /// <summary>Draws the chart and encodes it as PNG.</summary>
    public byte[] RenderPng(int width, int height)
    {
        if (ValueDecimals is < 0 or > 10) throw new ArgumentOutOfRangeException(nameof(ValueDecimals), ValueDecimals, "Use 0–10 decimals.");
        if (YMin is { } a && YMax is { } b && !(a < b)) throw new ArgumentException($"YMin ({a}) must be below YMax ({b}).");
        if (YMin is { } ymin && !double.IsFinite(ymin)) throw new ArgumentException($"YMin must be finite; got {ymin}.");
        if (YMax is { } ymax && !double.IsFinite(ymax)) throw new ArgumentException($"YMax must be finite; got {ymax}.");
        using var chart = new ChartCanvas(width, height, Style);
        var text = chart.Text;
        var style = Style;
        float m = style.Margin;

        var notes = new List<string>();
        int missing = series.Sum(s => s.Means.Count(double.IsNaN));
        if (missing > 0) notes.Add($"n/a: {missing} missing value{(missing == 1 ? "" : "s")} (NaN), no bar drawn.");

        // Vertical layout from the top: title, legend.
        float top = m;
        float titleHeight = chart.DrawTitle(Title, top);
        if (titleHeight > 0) top += titleHeight + 6;
        var legend = series.Select((s, i) => new LegendEntry(s.Name, (cv, cx, cy, size) =>
        {
            using var fill = new SKPaint { Color = style.SeriesColor(i), IsAntialias = false, Style = SKPaintStyle.Fill };
            cv.DrawRect(MathF.Round(cx - size / 2), MathF.Round(cy - size / 2), size, size, fill);
        })).ToList();
        bool showLegend = series.Length > 1 || AlwaysShowLegend;
        if (showLegend)
        {
            float legendHeight = chart.Legend(legend, top, draw: true);
            top += legendHeight + 8;
        }
        else top += 6;
        float plotTop = top;

        // From the bottom: notes, x-axis title, category labels; these depend on the plot's width, which depends on the
        // y-axis labels, whose range depends (for value labels) on the plot's height. Two passes settle it.
        float notesHeight = chart.Notes(notes, height - m, draw: false);
        float xTitleHeight = string.IsNullOrWhiteSpace(XAxisTitle) ? 0 : text.LineHeight(style.AxisTitleSize) + 4;
        float valueSize = Math.Max(8, style.TickLabelSize - 1);
        bool verticalValues = false;

        var (low, high) = DataRange();
        NiceScale scale = AxisScale(low, high, 0);
        CategoryLayout labels = default!;
        SKRect plot = default;
        for (int pass = 0; pass < 2; pass++)
        {
            float plotLeft = m + chart.YAxisWidth(YAxisTitle, scale);
            float plotRight = width - m;
            float groupWidth = (plotRight - plotLeft) / categories.Length;
            labels = LayoutCategories(text, style, groupWidth, height);
            // A label slanting down-left from the first group must not leave the picture.
            float overhang = labels.LeftOverhang - groupWidth / 2 + 4;
            if (plotLeft - overhang < m) plotLeft = Math.Min(m + overhang, (plotLeft + plotRight) / 2);
            float plotBottom = height - m - notesHeight - (notesHeight > 0 ? 6 : 0) - xTitleHeight - labels.Height - ChartCanvas.TickLength - 4;
            if (plotBottom - plotTop < 40)
                throw new ArgumentException($"A {width}×{height} picture leaves no room for the plot; make it larger or the labels shorter.");
            plot = new SKRect(plotLeft, plotTop, plotRight, plotBottom);
            if (ShowValues)
            {
                // Value labels wider than their bar would run into the neighbours' labels: stand them all upright.
                float barSlot = plot.Width / categories.Length * 0.8f / series.Length;
                var valueWidths = series.SelectMany(s => s.Means).Where(v => !double.IsNaN(v)).Select(v => text.MeasureWidth(FormatValue(v), valueSize)).DefaultIfEmpty(0);
                float widest = valueWidths.Max();
                verticalValues = widest > barSlot - 2;
                float extent = (verticalValues ? widest : text.LineHeight(valueSize)) + 3;
                scale = AxisScale(low, high, extent / plot.Height);
            }
        }

        float ToY(double v) => plot.Bottom - (float)((v - scale.Min) / (scale.Max - scale.Min)) * plot.Height;

        chart.DrawYAxis(plot, scale, ToY, YAxisTitle, m);
        DrawBars(chart, plot, scale, ToY, valueSize, verticalValues);

        using (var axis = new SKPaint { Color = style.AxisColor, StrokeWidth = 1, IsAntialias = false, Style = SKPaintStyle.Stroke })
        {
            float yb = ChartCanvas.Crisp(plot.Bottom);
            chart.Canvas.DrawLine(plot.Left - ChartCanvas.TickLength, yb, plot.Right, yb, axis);
            if (scale.Min < 0 && scale.Max > 0)
            {
                float y0 = ChartCanvas.Crisp(ToY(0));
                chart.Canvas.DrawLine(plot.Left, y0, plot.Right, y0, axis);
            }
        }

        DrawCategoryLabels(chart, plot, labels);
        if (xTitleHeight > 0)
        {
            float y = plot.Bottom + ChartCanvas.TickLength + 4 + labels.Height;
            text.Draw(chart.Canvas, text.Truncate(XAxisTitle!, style.AxisTitleSize, plot.Width), (plot.Left + plot.Right) / 2, y, style.AxisTitleSize, style.TextColor, TextAlign.Center);
        }
        chart.Notes(notes, height - m, draw: true);
        return chart.EncodePng();
    }

    (double Low, double High) DataRange()
    {
        double low = double.PositiveInfinity, high = double.NegativeInfinity;
        foreach (var s in series)
            for (int c = 0; c < categories.Length; c++)
            {
                double mean = s.Means[c];
                if (double.IsNaN(mean)) continue;
                double sd = s.StdDevs is { } d && !double.IsNaN(d[c]) ? d[c] : 0;
                low = Math.Min(low, mean - sd);
                high = Math.Max(high, mean + sd);
            }
        if (double.IsPositiveInfinity(low)) return (0, 1); // nothing but missing values
        // Bars grow from zero, so zero belongs to the axis.
        return (Math.Min(low, 0), Math.Max(high, 0));
    }

    NiceScale AxisScale(double low, double high, float headroomFraction)
    {
        double lo = YMin ?? low, hi = YMax ?? high;
        if (headroomFraction > 0 && hi > lo)
        {
            // Room for value labels above positive bars and below negative ones.
            double room = (hi - lo) * Math.Min(0.5, headroomFraction * 1.15);
            if (YMax is null && high > 0) hi += room;
            if (YMin is null && low < 0) lo -= room;
        }
        var nice = NiceScale.Covering(lo, hi);
        // An explicit limit is kept exactly, even where it is not a round tick.
        return nice with { Min = YMin ?? nice.Min, Max = YMax ?? nice.Max };
    }

    void DrawBars(ChartCanvas chart, SKRect plot, NiceScale scale, Func<double, float> toY, float valueSize, bool verticalValues)
    {
        var canvas = chart.Canvas;
        var style = Style;
        var text = chart.Text;
        float groupWidth = plot.Width / categories.Length;
        float cluster = groupWidth * 0.8f;
        float barSlot = cluster / series.Length;
        float gap = Math.Min(2, barSlot * 0.1f);
        double baseValue = Math.Clamp(0, scale.Min, scale.Max);
        float baseY = toY(baseValue);

        int saved = canvas.Save();
        canvas.ClipRect(new SKRect(plot.Left, plot.Top - 1, plot.Right + 1, plot.Bottom + 1));
        using var fill = new SKPaint { IsAntialias = false, Style = SKPaintStyle.Fill };
        using var errorPaint = new SKPaint { Color = style.ErrorBarColor, StrokeWidth = 1.5f, IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeCap = SKStrokeCap.Butt };
        float naSize = Math.Max(8, style.TickLabelSize - 1);
        for (int c = 0; c < categories.Length; c++)
        {
            float groupLeft = plot.Left + c * groupWidth + (groupWidth - cluster) / 2;
            for (int s = 0; s < series.Length; s++)
            {
                float x0 = MathF.Round(groupLeft + s * barSlot + gap / 2), x1 = MathF.Round(groupLeft + (s + 1) * barSlot - gap / 2);
                if (x1 <= x0) x1 = x0 + 1;
                float centre = ChartCanvas.Crisp((x0 + x1) / 2 - 0.5f);
                double mean = series[s].Means[c];
                if (double.IsNaN(mean))
                {
                    text.Draw(canvas, "n/a", (x0 + x1) / 2, baseY - text.LineHeight(naSize) - 2, naSize, style.MutedTextColor, TextAlign.Center);
                    continue;
                }
                float yMean = toY(mean);
                fill.Color = style.SeriesColor(s);
                canvas.DrawRect(SKRect.Create(x0, MathF.Round(Math.Min(yMean, baseY)), x1 - x0, MathF.Round(Math.Abs(baseY - yMean))), fill);

                double sd = series[s].StdDevs is { } d && !double.IsNaN(d[c]) ? d[c] : 0;
                if (sd > 0)
                {
                    float yHigh = MathF.Round(toY(mean + sd)) + 0.5f, yLow = MathF.Round(toY(mean - sd)) + 0.5f;
                    float cap = Math.Max(2, MathF.Round(Math.Min((x1 - x0) * 0.25f, 7)));
                    canvas.DrawLine(centre, yHigh, centre, yLow, errorPaint);
                    canvas.DrawLine(centre - cap, yHigh, centre + cap, yHigh, errorPaint);
                    canvas.DrawLine(centre - cap, yLow, centre + cap, yLow, errorPaint);
                }
                if (ShowValues)
                {
                    string label = FormatValue(mean);
                    bool up = mean >= baseValue;
                    float y = up ? toY(mean + sd) - 3 : toY(mean - sd) + 3;
                    if (verticalValues)
                        text.DrawRotated(canvas, label, MathF.Round((x0 + x1) / 2), y, valueSize, style.TextColor, -90, up ? TextAlign.Left : TextAlign.Right);
                    else
                        text.Draw(canvas, label, (x0 + x1) / 2, up ? y - text.LineHeight(valueSize) + 1 : y - 1, valueSize, style.TextColor, TextAlign.Center);
                }
            }
        }
        canvas.RestoreToCount(saved);
    }

    string FormatValue(double v) => (Math.Round(v, ValueDecimals) + 0.0).ToString("F" + ValueDecimals, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Category labels: lines per label, or one line rotated by <c>Angle</c> degrees; <c>LeftOverhang</c> is how far the first label reaches left of its group's centre.</summary>
    sealed record CategoryLayout(IReadOnlyList<IReadOnlyList<string>> Lines, float Angle, float Height, float LeftOverhang, float Size)
    {
        public bool Rotated => Angle != 0;
    }

    CategoryLayout LayoutCategories(TextRenderer text, ChartStyle style, float groupWidth, int pictureHeight)
    {
        float size = style.LabelSize, lh = text.LineHeight(size);
        float available = groupWidth - 6;
        var widths = categories.Select(c => text.MeasureWidth(c, size)).ToArray();
        if (widths.Max() <= available)
            return new CategoryLayout([.. categories.Select(c => (IReadOnlyList<string>)[c])], 0, lh, widths[0] / 2, size);

        var wrapped = categories.Select(c => text.Wrap(c, size, available)).ToArray();
        bool fits = wrapped.All(lines => lines.Count <= 3 && lines.All(l => text.MeasureWidth(l, size) <= available));
        if (fits)
            return new CategoryLayout(wrapped, 0, wrapped.Max(l => l.Count) * lh, wrapped[0].Max(l => text.MeasureWidth(l, size)) / 2, size);

        // Slanted at 45° (vertical for the bitmap font, whose pixels only stay legible axis-aligned); very long
        // names are shortened so the plot keeps most of the height.
        bool vertical = text.Kind == FontKind.BuiltIn;
        float slant = vertical ? 1 : (float)SqrtHalf;
        float maxLength = Math.Max(40, pictureHeight * 0.3f / slant);
        var slanted = categories.Select(c => (IReadOnlyList<string>)[text.Truncate(c, size, maxLength)]).ToArray();
        float longest = slanted.Max(l => text.MeasureWidth(l[0], size));
        float height = vertical ? longest + 2 : (longest + lh) * slant + 2;
        float firstOverhang = vertical ? lh / 2 : text.MeasureWidth(slanted[0][0], size) * slant;
        return new CategoryLayout(slanted, vertical ? 90 : 45, height, firstOverhang, size);
    }

    void DrawCategoryLabels(ChartCanvas chart, SKRect plot, CategoryLayout layout)
    {
        var text = chart.Text;
        var style = Style;
        float groupWidth = plot.Width / categories.Length;
        float top = plot.Bottom + ChartCanvas.TickLength + 4;
        float lh = text.LineHeight(layout.Size);
        using var tickPaint = new SKPaint { Color = style.AxisColor, StrokeWidth = 1, IsAntialias = false, Style = SKPaintStyle.Stroke };
        for (int c = 0; c < categories.Length; c++)
        {
            float cx = plot.Left + (c + 0.5f) * groupWidth;
            float tx = ChartCanvas.Crisp(cx);
            chart.Canvas.DrawLine(tx, plot.Bottom, tx, plot.Bottom + ChartCanvas.TickLength, tickPaint);
            if (layout.Angle == 90)
                text.DrawRotated(chart.Canvas, layout.Lines[c][0], MathF.Round(cx), top, layout.Size, style.TextColor, -90, TextAlign.Right);
            else if (layout.Rotated)
            {
                // The label's end sits just below the tick; the text runs up to it from the lower left.
                float d = lh / 2 * (float)SqrtHalf;
                text.DrawRotated(chart.Canvas, layout.Lines[c][0], cx + d, top + d, layout.Size, style.TextColor, -layout.Angle, TextAlign.Right);
            }
            else
            {
                for (int i = 0; i < layout.Lines[c].Count; i++)
                    text.Draw(chart.Canvas, layout.Lines[c][i], cx, top + i * lh, layout.Size, style.TextColor, TextAlign.Center);
            }
        }
    }
}
