using ScottPlot;

namespace DiffII.Reporting;

/// <summary>A point; a NaN coordinate marks it missing (not drawn, noted under the chart).</summary>
public sealed record ScatterPoint(double X, double Y, string? Label = null);

/// <summary>A series of points, e.g. one method as the split ratio varies; <paramref name="ConnectPoints"/> joins them in the given order.</summary>
public sealed record ScatterSeries(string Name, IReadOnlyList<ScatterPoint> Points, bool ConnectPoints = false);

/// <summary>Points with labels, optional connecting lines per series, axis titles, legend and round ticks. Drawn by ScottPlot with the bundled font.</summary>
public sealed class ScatterChart
{
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

    /// <summary>Draws the chart with ScottPlot and encodes it as PNG.</summary>
    public byte[] RenderPng(int width, int height)
    {
        ChartPlot.CheckLimits(XMin, XMax, "X");
        ChartPlot.CheckLimits(YMin, YMax, "Y");
        var style = Style;
        var plot = ChartPlot.Create(style, Title, XAxisTitle, YAxisTitle);

        int missing = 0;
        for (int s = 0; s < series.Length; s++)
        {
            var colour = ChartPlot.ToColor(style.SeriesColor(s));
            // A missing point breaks a connected line, so each unbroken run is its own ScottPlot scatter.
            var runs = new List<List<ScatterPoint>> { new() };
            foreach (var p in series[s].Points)
            {
                if (double.IsNaN(p.X) || double.IsNaN(p.Y))
                {
                    missing++;
                    if (runs[^1].Count > 0) runs.Add([]);
                    continue;
                }
                runs[^1].Add(p);
            }
            foreach (var run in runs.Where(r => r.Count > 0))
            {
                var scatter = plot.Add.Scatter(run.Select(p => p.X).ToArray(), run.Select(p => p.Y).ToArray(), colour);
                scatter.LineWidth = series[s].ConnectPoints ? 2 : 0;
                scatter.MarkerSize = 9;
                scatter.MarkerShape = MarkerShape.FilledCircle;
                if (!ShowPointLabels) continue;
                foreach (var p in run.Where(p => !string.IsNullOrEmpty(p.Label)))
                {
                    var label = plot.Add.Text(p.Label!, p.X, p.Y);
                    label.LabelFontSize = style.TickLabelSize;
                    label.LabelFontColor = colour;
                    label.LabelAlignment = Alignment.LowerLeft;
                    label.OffsetX = 6;
                    label.OffsetY = -6;
                }
            }
        }

        plot.Axes.AutoScale();
        var limits = plot.Axes.GetLimits();
        plot.Axes.SetLimits(XMin ?? limits.Left, XMax ?? limits.Right, YMin ?? limits.Bottom, YMax ?? limits.Top);

        if (series.Length > 1 || AlwaysShowLegend)
            ChartPlot.ShowLegend(plot, series.Select((s, i) => new LegendItem
            {
                LabelText = s.Name,
                MarkerShape = MarkerShape.FilledCircle,
                MarkerSize = 9,
                MarkerColor = ChartPlot.ToColor(style.SeriesColor(i)),
                LineColor = ChartPlot.ToColor(style.SeriesColor(i)),
                LineWidth = s.ConnectPoints ? 2 : 0,
            }));
        ChartPlot.AddNotes(plot, style, missing > 0 ? [$"{missing} point{(missing == 1 ? "" : "s")} with a missing (NaN) coordinate not shown."] : []);
        return ChartPlot.EncodePng(plot, width, height);
    }
}
