using ScottPlot;
using SkiaSharp;

namespace DiffII.Reporting;

/// <summary>What <see cref="BarChart"/> and <see cref="ScatterChart"/> share: a ScottPlot plot dressed in a <see cref="ChartStyle"/>, and its PNG.</summary>
internal static class ChartPlot
{
    public static Plot Create(ChartStyle style, string? title, string? xAxisTitle, string? yAxisTitle)
    {
        style.Validate();
        var plot = new Plot();
        ReportFont.Apply(plot);
        plot.FigureBackground.Color = ToColor(style.Background);
        plot.DataBackground.Color = ToColor(style.Background);
        plot.Grid.MajorLineColor = ToColor(style.GridColor);
        foreach (var axis in new IAxis[] { plot.Axes.Bottom, plot.Axes.Left })
        {
            axis.TickLabelStyle.FontSize = style.TickLabelSize;
            axis.TickLabelStyle.ForeColor = ToColor(style.TextColor);
            axis.FrameLineStyle.Color = ToColor(style.AxisColor);
            axis.MajorTickStyle.Color = ToColor(style.AxisColor);
            axis.MinorTickStyle.Color = ToColor(style.AxisColor);
        }
        plot.Axes.Right.FrameLineStyle.Width = 0;
        plot.Axes.Top.FrameLineStyle.Width = 0;
        if (!string.IsNullOrWhiteSpace(title)) plot.Title(title, style.TitleSize);
        if (!string.IsNullOrWhiteSpace(xAxisTitle)) plot.XLabel(xAxisTitle, style.AxisTitleSize);
        if (!string.IsNullOrWhiteSpace(yAxisTitle)) plot.YLabel(yAxisTitle, style.AxisTitleSize);
        plot.Axes.Title.Label.ForeColor = ToColor(style.TextColor);
        plot.Legend.FontSize = style.LabelSize;
        plot.Legend.FontColor = ToColor(style.TextColor);
        return plot;
    }

    /// <summary>Legend entries as filled squares (bars) or markers (points), above the plot so they cover no data.</summary>
    public static void ShowLegend(Plot plot, IEnumerable<LegendItem> items)
    {
        plot.Legend.ManualItems.AddRange(items);
        plot.ShowLegend(Edge.Top);
    }

    /// <summary>Notes (e.g. how many values were missing) in the plot's lower left corner.</summary>
    public static void AddNotes(Plot plot, ChartStyle style, IReadOnlyList<string> notes)
    {
        if (notes.Count == 0) return;
        var note = plot.Add.Annotation(string.Join("\n", notes), Alignment.LowerLeft);
        note.LabelFontSize = style.NoteSize;
        note.LabelFontColor = ToColor(style.MutedTextColor);
    }

    /// <summary>Renders the plot to PNG.</summary>
    public static byte[] EncodePng(Plot plot, int width, int height)
    {
        if (width is < 64 or > 16384 || height is < 64 or > 16384)
            throw new ArgumentOutOfRangeException(nameof(width), $"A chart must be between 64 and 16384 pixels on each side; got {width}×{height}.");
        using var image = plot.GetImage(width, height);
        return image.GetImageBytes(ImageFormat.Png);
    }

    public static Color ToColor(SKColor c) => new(c.Red, c.Green, c.Blue, c.Alpha);

    public static void CheckLimits(double? min, double? max, string axis)
    {
        if (min is { } a && !double.IsFinite(a)) throw new ArgumentException($"{axis}Min must be finite; got {a}.");
        if (max is { } b && !double.IsFinite(b)) throw new ArgumentException($"{axis}Max must be finite; got {b}.");
        if (min is { } lo && max is { } hi && !(lo < hi)) throw new ArgumentException($"{axis}Min ({lo}) must be below {axis}Max ({hi}).");
    }
}
