using ScottPlot;

namespace DiffII.Reporting;

/// <summary>
/// One group member of a bar chart, e.g. "in-distribution" accuracy: one mean per category, optionally ± a standard
/// deviation. A NaN mean is a missing value (drawn as "n/a"); a NaN or absent deviation draws no error bar.
/// </summary>
public sealed record BarSeries(string Name, IReadOnlyList<double> Means, IReadOnlyList<double>? StdDevs = null);

/// <summary>
/// Grouped bars with error bars: one group per category (e.g. a method), one bar per series (e.g. a test set).
/// Drawn by ScottPlot with the bundled font, so the PNG is the same on every machine.
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

    /// <summary>Draws the chart with ScottPlot and encodes it as PNG.</summary>
    public byte[] RenderPng(int width, int height)
    {
        if (ValueDecimals is < 0 or > 10) throw new ArgumentOutOfRangeException(nameof(ValueDecimals), ValueDecimals, "Use 0–10 decimals.");
        ChartPlot.CheckLimits(YMin, YMax, "Y");
        var style = Style;
        var plot = ChartPlot.Create(style, Title, XAxisTitle, YAxisTitle);

        // One group per category at x = 0, 1, …; the series share 80 % of a group's width.
        double slot = 0.8 / series.Length;
        var bars = new List<Bar>();
        int missing = 0;
        for (int c = 0; c < categories.Length; c++)
            for (int s = 0; s < series.Length; s++)
            {
                double position = c - 0.4 + (s + 0.5) * slot;
                double mean = series[s].Means[c];
                if (double.IsNaN(mean))
                {
                    missing++;
                    var na = plot.Add.Text("n/a", position, 0);
                    na.LabelFontSize = Math.Max(8, style.TickLabelSize - 1);
                    na.LabelFontColor = ChartPlot.ToColor(style.MutedTextColor);
                    na.LabelAlignment = Alignment.LowerCenter;
                    continue;
                }
                double sd = series[s].StdDevs is { } d && !double.IsNaN(d[c]) ? d[c] : 0;
                bars.Add(new Bar
                {
                    Position = position,
                    Value = mean,
                    Error = sd, // only places the value label above the error bar: with LineWidth 0 ScottPlot draws neither outline nor error
                    Size = slot * 0.9,
                    FillColor = ChartPlot.ToColor(style.SeriesColor(s)),
                    LineWidth = 0,
                    Label = ShowValues ? FormatValue(mean) : "",
                });
            }
        var barPlot = plot.Add.Bars(bars);
        // Error bars in one colour (not the series colour), so they stay visible on any bar.
        var withError = bars.Where(b => b.Error > 0).ToList();
        if (withError.Count > 0)
        {
            var errors = plot.Add.ErrorBar(withError.Select(b => b.Position).ToList(), withError.Select(b => b.Value).ToList(), withError.Select(b => b.Error).ToList());
            errors.Color = ChartPlot.ToColor(style.ErrorBarColor);
            errors.LineWidth = 1.5f;
        }
        barPlot.ValueLabelStyle.FontSize = Math.Max(8, style.TickLabelSize - 1);
        barPlot.ValueLabelStyle.ForeColor = ChartPlot.ToColor(style.TextColor);

        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int c = 0; c < categories.Length; c++) ticks.AddMajor(c, categories[c]);
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.TickLabelStyle.FontSize = style.LabelSize;
        SlantLongCategoryNames(plot, width, height);

        var (low, high) = DataRange();
        double headroom = (high - low) * (ShowValues ? 0.12 : 0.05);
        double bottom = YMin ?? (low < 0 ? low - headroom : 0);
        double top = YMax ?? (high > 0 ? high + headroom : 0);
        if (!(top > bottom)) top = bottom + 1;
        plot.Axes.SetLimits(-0.5, categories.Length - 0.5, bottom, top);

        if (series.Length > 1 || AlwaysShowLegend)
            ChartPlot.ShowLegend(plot, series.Select((s, i) => new LegendItem { LabelText = s.Name, FillColor = ChartPlot.ToColor(style.SeriesColor(i)) }));
        ChartPlot.AddNotes(plot, style, missing > 0 ? [$"n/a: {missing} missing value{(missing == 1 ? "" : "s")} (NaN), no bar drawn."] : []);
        return ChartPlot.EncodePng(plot, width, height);
    }

    /// <summary>Names wider than their group are slanted at 45° (and very long ones shortened) so they do not overlap.</summary>
    void SlantLongCategoryNames(Plot plot, int width, int height)
    {
        float size = Style.LabelSize;
        float group = width * 0.8f / categories.Length;
        if (categories.Max(c => ReportText.MeasureWidth(c, size)) <= group - 6) return;
        float maxLength = Math.Max(40, height * 0.3f / (float)SqrtHalf);
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int c = 0; c < categories.Length; c++) ticks.AddMajor(c, ReportText.Truncate(categories[c], size, maxLength));
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.TickLabelStyle.Rotation = -45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        float longest = categories.Max(c => ReportText.MeasureWidth(ReportText.Truncate(c, size, maxLength), size));
        plot.Axes.Bottom.MinimumSize = (longest + ReportText.LineHeight(size)) * (float)SqrtHalf + 10;
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

    string FormatValue(double v) => (Math.Round(v, ValueDecimals) + 0.0).ToString("F" + ValueDecimals, System.Globalization.CultureInfo.InvariantCulture);
}
