using SkiaSharp;

namespace DiffII.Reporting;

/// <summary>
/// Single-line text in pixel sizes with the bundled font, for the picture parts ScottPlot does not draw (image-grid
/// labels and captions). Positions are line-box based: <c>top</c> is the top of a box <see cref="LineHeight"/> tall
/// that holds ascenders and descenders.
/// </summary>
public static class ReportText
{
    /// <summary>Height of one line box at <paramref name="size"/> pixels per em.</summary>
    public static float LineHeight(float size)
    {
        using var font = NewFont(size);
        var m = font.Metrics;
        return MathF.Ceiling(m.Descent - m.Ascent);
    }

    /// <summary>Advance width of <paramref name="text"/>.</summary>
    public static float MeasureWidth(string text, float size)
    {
        ArgumentNullException.ThrowIfNull(text);
        using var font = NewFont(size);
        return font.MeasureText(text);
    }

    /// <summary>Draws one line of text; (x, top) is the anchor given by <paramref name="align"/> at the top of the line box.</summary>
    public static void Draw(SKCanvas canvas, string text, float x, float top, float size, SKColor color, TextAlign align = TextAlign.Left)
    {
        ArgumentNullException.ThrowIfNull(canvas);
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) return;
        using var font = NewFont(size);
        using var paint = new SKPaint { Color = color, IsAntialias = true };
        float width = font.MeasureText(text);
        float left = align switch
        {
            TextAlign.Center => x - width / 2,
            TextAlign.Right => x - width,
            _ => x,
        };
        canvas.DrawText(text, left, top - font.Metrics.Ascent, SKTextAlign.Left, font, paint);
    }

    /// <summary>
    /// Greedy word wrap at spaces and line breaks; only when a word alone is too wide does it also break after hyphens
    /// inside words. A piece still wider than <paramref name="maxWidth"/> keeps its own line.
    /// </summary>
    public static IReadOnlyList<string> Wrap(string text, float size, float maxWidth)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lines = Wrap(text, size, maxWidth, breakHyphens: false);
        return lines.Any(l => MeasureWidth(l, size) > maxWidth) ? Wrap(text, size, maxWidth, breakHyphens: true) : lines;
    }

    static List<string> Wrap(string text, float size, float maxWidth, bool breakHyphens)
    {
        var lines = new List<string>();
        foreach (var paragraph in text.Split('\n'))
        {
            string current = "";
            foreach (var word in SplitWords(paragraph, breakHyphens))
            {
                string candidate = current.Length == 0 ? word.TrimStart() : current + word;
                if (current.Length > 0 && MeasureWidth(candidate.TrimEnd(), size) > maxWidth)
                {
                    lines.Add(current.TrimEnd());
                    current = word.TrimStart();
                }
                else current = candidate;
            }
            lines.Add(current.TrimEnd());
        }
        return lines;
    }

    /// <summary>Shortens <paramref name="text"/> with an ellipsis so it fits <paramref name="maxWidth"/>.</summary>
    public static string Truncate(string text, float size, float maxWidth)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (MeasureWidth(text, size) <= maxWidth) return text;
        const string ellipsis = "…";
        for (int n = text.Length - 1; n > 0; n--)
        {
            string candidate = text[..n].TrimEnd() + ellipsis;
            if (MeasureWidth(candidate, size) <= maxWidth) return candidate;
        }
        return ellipsis;
    }

    static List<string> SplitWords(string text, bool breakHyphens)
    {
        // Each piece keeps its leading spaces or trailing break character so joining pieces restores the text.
        var words = new List<string>();
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == ' ' && i > start && text[i - 1] != ' ')
            {
                words.Add(text[start..i]);
                start = i;
            }
            else if (breakHyphens && text[i] == '-' && i > start && char.IsLetterOrDigit(text[i - 1]) && i + 1 < text.Length && text[i + 1] != ' ')
            {
                words.Add(text[start..(i + 1)]);
                start = i + 1;
            }
        }
        if (start < text.Length) words.Add(text[start..]);
        return words;
    }

    static SKFont NewFont(float size)
    {
        if (!(size > 0) || float.IsInfinity(size))
            throw new ArgumentOutOfRangeException(nameof(size), size, "The text size must be a positive number of pixels.");
        return new SKFont(ReportFont.Typeface, size) { Edging = SKFontEdging.Antialias, Subpixel = false, Hinting = SKFontHinting.Slight };
    }
}
