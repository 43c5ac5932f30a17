using SkiaSharp;

namespace DiffII.Reporting;

/// <summary>A legend entry: a name and how to draw its swatch in a box of the given centre and size.</summary>
internal readonly record struct LegendEntry(string Name, Action<SKCanvas, float, float, float> DrawSwatch);

/// <summary>
/// The drawing surface and the layout pieces the charts share: title, legend rows, a rotated y-axis title, tick
/// labels and notes. Every method takes the space it may use and returns the space it took.
/// </summary>
internal sealed class ChartCanvas : IDisposable
{
    public const float SwatchSize = 13;
    public const float TickLength = 5;
    const float LegendGap = 18;

    readonly SKBitmap bitmap;

    public ChartCanvas(int width, int height, ChartStyle style)
    {
        if (width < 64 || height < 64 || width > 16384 || height > 16384)
            throw new ArgumentOutOfRangeException(nameof(width), $"A chart must be between 64 and 16384 pixels on each side; got {width}×{height}.");
        ArgumentNullException.ThrowIfNull(style);
        style.Validate();
        Style = style;
        Width = width;
        Height = height;
        bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        Canvas = new SKCanvas(bitmap);
        Canvas.Clear(style.Background);
        Text = TextRenderer.Create(style.Font);
    }

    public int Width { get; }
    public int Height { get; }
    public ChartStyle Style { get; }
    public SKCanvas Canvas { get; }
    public TextRenderer Text { get; }

    /// <summary>Draws a centred, wrapped title; returns its height (0 without a title).</summary>
    public float DrawTitle(string? title, float top)
    {
        if (string.IsNullOrWhiteSpace(title)) return 0;
        float size = Style.TitleSize, lh = Text.LineHeight(size);
        var lines = Text.Wrap(title, size, Width - 2 * Style.Margin);
        for (int i = 0; i < lines.Count; i++)
            Text.Draw(Canvas, lines[i], Width / 2f, top + i * lh, size, Style.TextColor, TextAlign.Center);
        return lines.Count * lh;
    }

    /// <summary>Lays the entries out in centred rows no wider than the picture; draws them when <paramref name="draw"/>; returns the height.</summary>
    public float Legend(IReadOnlyList<LegendEntry> entries, float top, bool draw)
    {
        if (entries.Count == 0) return 0;
        float size = Style.LabelSize, lh = Math.Max(Text.LineHeight(size), SwatchSize + 2);
        float available = Width - 2 * Style.Margin;
        var rows = new List<List<(LegendEntry Entry, string Label, float Width)>> { new() };
        float rowWidth = 0;
        foreach (var entry in entries)
        {
            string label = Text.Truncate(entry.Name, size, available - SwatchSize - 6);
            float w = SwatchSize + 6 + Text.MeasureWidth(label, size);
            float needed = rows[^1].Count == 0 ? w : rowWidth + LegendGap + w;
            if (rows[^1].Count > 0 && needed > available)
            {
                rows.Add([]);
                needed = w;
            }
            rows[^1].Add((entry, label, w));
            rowWidth = needed;
        }
        if (draw)
        {
            for (int r = 0; r < rows.Count; r++)
            {
                float total = rows[r].Sum(e => e.Width) + LegendGap * (rows[r].Count - 1);
                float x = MathF.Round((Width - total) / 2), rowTop = top + r * lh;
                foreach (var (entry, label, w) in rows[r])
                {
                    entry.DrawSwatch(Canvas, x + SwatchSize / 2, rowTop + lh / 2, SwatchSize);
                    Text.Draw(Canvas, label, x + SwatchSize + 6, rowTop + (lh - Text.LineHeight(size)) / 2, size, Style.TextColor);
                    x += w + LegendGap;
                }
            }
        }
        return rows.Count * lh;
    }

    /// <summary>Notes (e.g. about missing values) stacked upwards from <paramref name="bottom"/>; returns their height.</summary>
    public float Notes(IReadOnlyList<string> notes, float bottom, bool draw)
    {
        if (notes.Count == 0) return 0;
        float size = Style.NoteSize, lh = Text.LineHeight(size);
        var lines = notes.SelectMany(n => Text.Wrap(n, size, Width - 2 * Style.Margin)).ToList();
        if (draw)
            for (int i = 0; i < lines.Count; i++)
                Text.Draw(Canvas, lines[i], Style.Margin, bottom - (lines.Count - i) * lh, size, Style.MutedTextColor);
        return lines.Count * lh;
    }

    /// <summary>Width taken left of the plot by a rotated y-axis title and the tick labels.</summary>
    public float YAxisWidth(string? title, NiceScale scale)
    {
        float tickLabels = scale.Ticks.Max(t => Text.MeasureWidth(scale.Format(t), Style.TickLabelSize));
        float titleWidth = string.IsNullOrWhiteSpace(title) ? 0 : Text.LineHeight(Style.AxisTitleSize) + 6;
        return titleWidth + tickLabels + 4 + TickLength;
    }

    /// <summary>Horizontal grid lines, tick marks and labels, the y-axis title, and the left axis line.</summary>
    public void DrawYAxis(SKRect plot, NiceScale scale, Func<double, float> toY, string? title, float left)
    {
        using var grid = new SKPaint { Color = Style.GridColor, StrokeWidth = 1, IsAntialias = false, Style = SKPaintStyle.Stroke };
        using var axis = new SKPaint { Color = Style.AxisColor, StrokeWidth = 1, IsAntialias = false, Style = SKPaintStyle.Stroke };
        float tlh = Text.LineHeight(Style.TickLabelSize);
        foreach (var tick in scale.Ticks)
        {
            float y = Crisp(toY(tick));
            Canvas.DrawLine(plot.Left, y, plot.Right, y, grid);
            Canvas.DrawLine(plot.Left - TickLength, y, plot.Left, y, axis);
            Text.Draw(Canvas, scale.Format(tick), plot.Left - TickLength - 4, y - tlh / 2, Style.TickLabelSize, Style.TextColor, TextAlign.Right);
        }
        Canvas.DrawLine(Crisp(plot.Left), plot.Top, Crisp(plot.Left), plot.Bottom, axis);
        if (!string.IsNullOrWhiteSpace(title))
        {
            string fitted = Text.Truncate(title, Style.AxisTitleSize, plot.Height);
            Text.DrawRotated(Canvas, fitted, left + Text.LineHeight(Style.AxisTitleSize) / 2, (plot.Top + plot.Bottom) / 2,
                Style.AxisTitleSize, Style.TextColor, -90, TextAlign.Center);
        }
    }

    /// <summary>Puts a one-pixel line on a pixel centre so it is one crisp pixel wide.</summary>
    public static float Crisp(float v) => MathF.Floor(v) + 0.5f;

    public byte[] EncodePng()
    {
        Canvas.Flush();
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    public void Dispose()
    {
        Text.Dispose();
        Canvas.Dispose();
        bitmap.Dispose();
    }
}
