using DiffII.Imaging;
using SkiaSharp;

namespace DiffII.Reporting;

/// <summary>How <see cref="ImageGrid"/> lays out and labels its cells.</summary>
public sealed record ImageGridOptions
{
    /// <summary>Whole-number magnification when no cell size is given: a cell is the largest image times this (e.g. 3 for 32×32 images).</summary>
    public int Scale { get; init; } = 1;
    /// <summary>Fixed cell width; images are scaled to fit, keeping their aspect ratio, and centred.</summary>
    public int? CellWidth { get; init; }
    /// <summary>Fixed cell height; see <see cref="CellWidth"/>.</summary>
    public int? CellHeight { get; init; }
    /// <summary>Blank pixels between cells and around the picture.</summary>
    public int Padding { get; init; } = 4;
    public SKColor Background { get; init; } = SKColors.White;
    /// <summary>Shown in place of a null image.</summary>
    public SKColor MissingCellColor { get; init; } = new(0xE6, 0xE6, 0xE6);
    public SKColor TextColor { get; init; } = new(0x22, 0x22, 0x22);
    /// <summary>One label per row, drawn left of the row; null for none.</summary>
    public IReadOnlyList<string>? RowLabels { get; init; }
    /// <summary>One label per column, drawn above the columns (or below with <see cref="ColumnLabelsBelow"/>); null for none.</summary>
    public IReadOnlyList<string>? ColumnLabels { get; init; }
    /// <summary>Puts the column labels under the images, as captions.</summary>
    public bool ColumnLabelsBelow { get; init; }
    public string? Title { get; init; }
    public float LabelSize { get; init; } = 13;
    public float TitleSize { get; init; } = 16;
    /// <summary>Row labels wider than this are wrapped.</summary>
    public int MaxRowLabelWidth { get; init; } = 180;
}

/// <summary>
/// Composes images into a labelled grid (e.g. classes × augmentation methods) or a captioned strip (e.g. an
/// interpolation path with φ under each image). Upscaling is nearest-neighbour so small images keep crisp pixels;
/// downscaling is smoothed. Output is PNG and deterministic.
/// </summary>
public static class ImageGrid
{
    const int MaxSide = 16384;

    /// <summary>Renders rows of images; rows may be shorter than the longest (the rest stays blank), and null cells are shown as grey placeholders.</summary>
    public static byte[] RenderPng(IReadOnlyList<IReadOnlyList<SKBitmap?>> rows, ImageGridOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(rows);
        options ??= new ImageGridOptions();
        Validate(rows, options);
        return Render(rows, options);
    }

    /// <summary>Renders rows of encoded images (PNG, JPEG, …); errors name the cell that does not decode.</summary>
    public static byte[] RenderPng(IReadOnlyList<IReadOnlyList<byte[]?>> rows, ImageGridOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var decoded = new List<IReadOnlyList<SKBitmap?>>(rows.Count);
        try
        {
            for (int r = 0; r < rows.Count; r++)
            {
                var row = rows[r] ?? throw new ArgumentException($"Row {r} is null.", nameof(rows));
                var cells = new SKBitmap?[row.Count];
                decoded.Add(cells);
                for (int c = 0; c < row.Count; c++)
                    cells[c] = row[c] is { } bytes ? ImageCodec.Decode(bytes, $"image grid row {r}, column {c}") : null;
            }
            return RenderPng(decoded, options);
        }
        finally
        {
            foreach (var row in decoded) foreach (var cell in row) cell?.Dispose();
        }
    }

    /// <summary>One row of images with a caption under each, like an interpolation path labelled with φ values.</summary>
    public static byte[] InterpolationStripPng(IReadOnlyList<SKBitmap> images, IReadOnlyList<string> captions, ImageGridOptions? options = null) =>
        RenderPng([images], StripOptions(images, captions, options));

    /// <summary>The strip from encoded images.</summary>
    public static byte[] InterpolationStripPng(IReadOnlyList<byte[]> images, IReadOnlyList<string> captions, ImageGridOptions? options = null)
    {
        var stripOptions = StripOptions(images, captions, options);
        return RenderPng([images.Select(i => (byte[]?)(i ?? throw new ArgumentException("An interpolation strip image is null.", nameof(images)))).ToArray()], stripOptions);
    }

    /// <summary>A strip's checks (one caption per image, at least one image) and its options: the captions below the images.</summary>
    static ImageGridOptions StripOptions<T>(IReadOnlyList<T> images, IReadOnlyList<string> captions, ImageGridOptions? options)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(captions);
        if (images.Count == 0) throw new ArgumentException("An interpolation strip needs at least one image.", nameof(images));
        if (captions.Count != images.Count)
            throw new ArgumentException($"An interpolation strip has {images.Count} images but {captions.Count} captions.", nameof(captions));
        return (options ?? new ImageGridOptions()) with { ColumnLabels = captions, ColumnLabelsBelow = true };
    }

    static void Validate(IReadOnlyList<IReadOnlyList<SKBitmap?>> rows, ImageGridOptions o)
    {
        if (rows.Count == 0) throw new ArgumentException("An image grid needs at least one row.", nameof(rows));
        for (int r = 0; r < rows.Count; r++)
        {
            var row = rows[r] ?? throw new ArgumentException($"Row {r} is null.", nameof(rows));
            for (int c = 0; c < row.Count; c++)
                if (row[c] is { } b && (b.Width <= 0 || b.Height <= 0))
                    throw new ArgumentException($"The image at row {r}, column {c} has no pixels ({b.Width}×{b.Height}).", nameof(rows));
        }
        int columns = rows.Max(r => r.Count);
        if (columns == 0) throw new ArgumentException("An image grid needs at least one image.", nameof(rows));
        if (rows.All(r => r.All(c => c is null)) && (o.CellWidth is null || o.CellHeight is null))
            throw new ArgumentException("Every cell is empty; give CellWidth and CellHeight to draw an empty grid.", nameof(rows));
        if (o.Scale is < 1 or > 64) throw new ArgumentException($"{nameof(ImageGridOptions.Scale)} must be between 1 and 64; got {o.Scale}.");
        if (o.CellWidth is { } cw && cw < 1) throw new ArgumentException($"{nameof(ImageGridOptions.CellWidth)} must be positive; got {cw}.");
        if (o.CellHeight is { } ch && ch < 1) throw new ArgumentException($"{nameof(ImageGridOptions.CellHeight)} must be positive; got {ch}.");
        if (o.Padding < 0) throw new ArgumentException($"{nameof(ImageGridOptions.Padding)} must not be negative; got {o.Padding}.");
        if (!(o.LabelSize > 0) || !(o.TitleSize > 0) || float.IsInfinity(o.LabelSize) || float.IsInfinity(o.TitleSize))
            throw new ArgumentException("Label and title sizes must be positive numbers.");
        if (o.MaxRowLabelWidth < 8) throw new ArgumentException($"{nameof(ImageGridOptions.MaxRowLabelWidth)} must be at least 8; got {o.MaxRowLabelWidth}.");
        if (o.RowLabels is { } rl && rl.Count != rows.Count)
            throw new ArgumentException($"The grid has {rows.Count} rows but {rl.Count} row labels.", nameof(o.RowLabels));
        if (o.ColumnLabels is { } cl && cl.Count != columns)
            throw new ArgumentException($"The grid has {columns} columns but {cl.Count} column labels.", nameof(o.ColumnLabels));
        if (o.RowLabels?.Any(l => l is null) == true || o.ColumnLabels?.Any(l => l is null) == true)
            throw new ArgumentException("A row or column label is null; use \"\" for no label.");
    }

    static (int Width, int Height) CellSize(List<SKBitmap> images, ImageGridOptions o)
    {
        if (o.CellWidth is { } w && o.CellHeight is { } h) return (w, h);
        // With one side fixed, the other fits the tallest (or widest) image's aspect ratio.
        if (o.CellWidth is { } fixedW) return (fixedW, (int)Math.Ceiling(images.Max(b => (double)b.Height / b.Width) * fixedW - 1e-9));
        if (o.CellHeight is { } fixedH) return ((int)Math.Ceiling(images.Max(b => (double)b.Width / b.Height) * fixedH - 1e-9), fixedH);
        return (images.Max(b => b.Width) * o.Scale, images.Max(b => b.Height) * o.Scale);
    }

    static byte[] Render(IReadOnlyList<IReadOnlyList<SKBitmap?>> rows, ImageGridOptions o)
    {
        int columns = rows.Max(r => r.Count);
        var images = rows.SelectMany(r => r).OfType<SKBitmap>().ToList();
        var (cellW, cellH) = CellSize(images, o);
        int pad = o.Padding;

        float lh = ReportText.LineHeight(o.LabelSize);

        // Column labels: wrapped to the cell width, shrunk when a single word does not fit.
        var columnLines = new List<IReadOnlyList<string>>();
        float columnSize = o.LabelSize;
        if (o.ColumnLabels is { } colLabels)
        {
            while (true)
            {
                columnLines = colLabels.Select(l => ReportText.Wrap(l, columnSize, cellW)).ToList();
                bool fits = columnLines.All(ls => ls.All(l => ReportText.MeasureWidth(l, columnSize) <= cellW));
                if (fits || columnSize <= 8) break;
                columnSize -= 1;
            }
            columnLines = columnLines.Select(ls => (IReadOnlyList<string>)ls.Select(l => ReportText.Truncate(l, columnSize, cellW)).ToList()).ToList();
        }
        float columnLineHeight = ReportText.LineHeight(columnSize);
        int columnLabelHeight = columnLines.Count == 0 ? 0 : (int)Math.Ceiling(columnLines.Max(ls => ls.Count) * columnLineHeight) + pad;

        var rowLines = new List<IReadOnlyList<string>>();
        int rowLabelWidth = 0;
        if (o.RowLabels is { } rowLabels)
        {
            rowLines = rowLabels.Select(l => (IReadOnlyList<string>)ReportText.Wrap(l, o.LabelSize, o.MaxRowLabelWidth)
                .Select(x => ReportText.Truncate(x, o.LabelSize, o.MaxRowLabelWidth)).ToList()).ToList();
            rowLabelWidth = (int)Math.Ceiling(rowLines.SelectMany(ls => ls).Select(l => ReportText.MeasureWidth(l, o.LabelSize)).DefaultIfEmpty(0).Max());
            if (rowLabelWidth > 0) rowLabelWidth += pad + 2;
        }

        var titleLines = string.IsNullOrWhiteSpace(o.Title) ? [] : ReportText.Wrap(o.Title, o.TitleSize, Math.Max(cellW * columns, 200));
        int titleHeight = titleLines.Count == 0 ? 0 : (int)Math.Ceiling(titleLines.Count * ReportText.LineHeight(o.TitleSize)) + pad;

        long gridW = (long)columns * cellW + (long)(columns - 1) * pad, gridH = (long)rows.Count * cellH + (long)(rows.Count - 1) * pad;
        long width = pad + rowLabelWidth + gridW + pad;
        long titleWidth = titleLines.Count == 0 ? 0 : (long)Math.Ceiling(titleLines.Max(l => ReportText.MeasureWidth(l, o.TitleSize))) + 2 * pad;
        width = Math.Max(width, titleWidth);
        long height = pad + titleHeight + columnLabelHeight + gridH + pad;
        if (width > MaxSide || height > MaxSide)
            throw new ArgumentException($"The grid would be {width}×{height} pixels (at most {MaxSide} per side); use a smaller scale or fewer images.");

        using var bitmap = new SKBitmap(new SKImageInfo((int)width, (int)height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bitmap);
        canvas.Clear(o.Background);

        int gridLeft = pad + rowLabelWidth + (int)((width - (pad + rowLabelWidth + gridW + pad)) / 2);
        int gridTop = pad + titleHeight + (o.ColumnLabelsBelow ? 0 : columnLabelHeight);

        float titleLh = ReportText.LineHeight(o.TitleSize);
        for (int i = 0; i < titleLines.Count; i++)
        {
            // Centred over the images, moved inwards where that would cut it off.
            float half = ReportText.MeasureWidth(titleLines[i], o.TitleSize) / 2;
            float centre = Math.Clamp(gridLeft + gridW / 2f, pad + half, Math.Max(pad + half, width - pad - half));
            ReportText.Draw(canvas, titleLines[i], centre, pad + i * titleLh, o.TitleSize, o.TextColor, TextAlign.Center);
        }

        using var missing = new SKPaint { Color = o.MissingCellColor, Style = SKPaintStyle.Fill, IsAntialias = false };
        using var cellPaint = new SKPaint { IsAntialias = false };
        var nearest = new SKSamplingOptions(SKFilterMode.Nearest);
        var smooth = new SKSamplingOptions(SKCubicResampler.Mitchell); // what SKFilterQuality.High meant
        for (int r = 0; r < rows.Count; r++)
        {
            int y = gridTop + r * (cellH + pad);
            for (int c = 0; c < rows[r].Count; c++)
            {
                int x = gridLeft + c * (cellW + pad);
                if (rows[r][c] is not { } image)
                {
                    canvas.DrawRect(x, y, cellW, cellH, missing);
                    continue;
                }
                double fit = Math.Min((double)cellW / image.Width, (double)cellH / image.Height);
                int w = Math.Max(1, (int)Math.Round(image.Width * fit)), h = Math.Max(1, (int)Math.Round(image.Height * fit));
                var dest = SKRect.Create(x + (cellW - w) / 2, y + (cellH - h) / 2, w, h);
                using var cell = SKImage.FromBitmap(image);
                canvas.DrawImage(cell, dest, fit >= 1 ? nearest : smooth, cellPaint);
            }
            if (rowLines.Count > 0)
            {
                var lines = rowLines[r];
                float blockTop = y + (cellH - lines.Count * lh) / 2;
                for (int i = 0; i < lines.Count; i++)
                    ReportText.Draw(canvas, lines[i], gridLeft - pad - 2, blockTop + i * lh, o.LabelSize, o.TextColor, TextAlign.Right);
            }
        }

        if (columnLines.Count > 0)
        {
            // Labels above sit on the grid (bottom-aligned); captions below hang from it.
            int labelsTop = o.ColumnLabelsBelow ? gridTop + (int)gridH + pad : pad + titleHeight;
            int blockHeight = columnLabelHeight - pad;
            for (int c = 0; c < columns; c++)
            {
                var lines = columnLines[c];
                float top = o.ColumnLabelsBelow ? labelsTop : labelsTop + blockHeight - lines.Count * columnLineHeight;
                float cx = gridLeft + c * (cellW + pad) + cellW / 2f;
                for (int i = 0; i < lines.Count; i++)
                    ReportText.Draw(canvas, lines[i], cx, top + i * columnLineHeight, columnSize, o.TextColor, TextAlign.Center);
            }
        }

        canvas.Flush();
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
