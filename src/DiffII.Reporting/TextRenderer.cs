using SkiaSharp;

namespace DiffII.Reporting;

/// <summary>Where text glyphs come from.</summary>
public enum FontKind
{
    /// <summary>A TrueType/OpenType file loaded with <see cref="SKTypeface.FromFile"/>.</summary>
    FontFile,
    /// <summary>The built-in 5×7 bitmap font (no font file was found, or it was asked for).</summary>
    BuiltIn,
}

/// <summary>Horizontal anchoring of a text run.</summary>
public enum TextAlign { Left, Center, Right }

/// <summary>How reports find a font.</summary>
/// <param name="FontPath">An explicit font file; it must load, or rendering fails with an error naming it.</param>
/// <param name="ForceBuiltIn">Skip font files and use the built-in bitmap font (identical output on every machine).</param>
public sealed record FontOptions(string? FontPath = null, bool ForceBuiltIn = false)
{
    /// <summary>Environment variable naming a font file; it is used before the well-known system locations.</summary>
    public const string EnvironmentVariable = "DIFFII_FONT";

    public static FontOptions Default { get; } = new();
    public static FontOptions BuiltIn { get; } = new(ForceBuiltIn: true);
}

/// <summary>
/// Measures and draws single-line text in pixel sizes. The SkiaSharp "NoDependencies" native has no fontconfig, so
/// <see cref="SKTypeface.Default"/> may have no glyphs at all; this loads a real font file instead (an explicit path,
/// then <c>DIFFII_FONT</c>, then common Linux, macOS and Windows locations) and falls back to a built-in bitmap font.
/// Positions are line-box based: <c>top</c> is the top of a box <see cref="LineHeight"/> tall that holds ascenders
/// and descenders.
/// </summary>
public sealed class TextRenderer : IDisposable
{
    readonly SKTypeface? typeface;

    TextRenderer(SKTypeface? typeface, string? fontPath)
    {
        this.typeface = typeface;
        FontPath = fontPath;
    }

    public FontKind Kind => typeface is null ? FontKind.BuiltIn : FontKind.FontFile;

    /// <summary>The loaded font file, or null for the built-in font.</summary>
    public string? FontPath { get; }

    /// <summary>Finds a font as <paramref name="options"/> says.</summary>
    /// <exception cref="ArgumentException">An explicit <see cref="FontOptions.FontPath"/> or <c>DIFFII_FONT</c> does not name a loadable font.</exception>
    public static TextRenderer Create(FontOptions? options = null)
    {
        options ??= FontOptions.Default;
        if (options.ForceBuiltIn) return new TextRenderer(null, null);
        if (options.FontPath is { } explicitPath)
            return new TextRenderer(LoadOrThrow(explicitPath, $"{nameof(FontOptions)}.{nameof(FontOptions.FontPath)}"), explicitPath);
        if (Environment.GetEnvironmentVariable(FontOptions.EnvironmentVariable) is { Length: > 0 } envPath)
            return new TextRenderer(LoadOrThrow(envPath, $"the {FontOptions.EnvironmentVariable} environment variable"), envPath);
        foreach (var path in WellKnownFontPaths())
        {
            if (!File.Exists(path)) continue;
            var face = TryLoad(path);
            if (face is not null) return new TextRenderer(face, path);
        }
        return new TextRenderer(null, null);
    }

    /// <summary>Font files tried, in order, when neither an explicit path nor <c>DIFFII_FONT</c> is given.</summary>
    public static IReadOnlyList<string> WellKnownFontPaths()
    {
        var paths = new List<string>
        {
            // Debian/Ubuntu, Fedora, Arch, openSUSE, Alpine
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/DejaVuSans.ttf",
            "/usr/share/fonts/ttf-dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
            "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
            "/usr/share/fonts/noto/NotoSans-Regular.ttf",
            // macOS
            "/System/Library/Fonts/Supplemental/Arial.ttf",
            "/Library/Fonts/Arial.ttf",
            "/System/Library/Fonts/Helvetica.ttc",
        };
        var windowsFonts = Environment.GetFolderPath(Environment.SpecialFolder.Fonts);
        if (windowsFonts.Length == 0 && Environment.GetEnvironmentVariable("WINDIR") is { Length: > 0 } windir)
            windowsFonts = Path.Combine(windir, "Fonts");
        if (windowsFonts.Length > 0)
        {
            paths.Add(Path.Combine(windowsFonts, "segoeui.ttf"));
            paths.Add(Path.Combine(windowsFonts, "arial.ttf"));
        }
        return paths;
    }

    static SKTypeface? TryLoad(string path)
    {
        var face = SKTypeface.FromFile(path);
        if (face is null) return null;
        // A file Skia opens but that has no Latin glyphs would draw boxes everywhere.
        using var font = new SKFont(face, 12);
        if (font.ContainsGlyphs("Aa0")) return face;
        face.Dispose();
        return null;
    }

    static SKTypeface LoadOrThrow(string path, string origin)
    {
        if (!File.Exists(path))
            throw new ArgumentException($"The font file '{path}' given by {origin} does not exist.");
        return TryLoad(path)
            ?? throw new ArgumentException($"The font file '{path}' given by {origin} is not a font Skia can load (TrueType/OpenType with Latin glyphs expected).");
    }

    /// <summary>Height of one line box at <paramref name="size"/> pixels per em.</summary>
    public float LineHeight(float size)
    {
        CheckSize(size);
        if (typeface is null) return BitmapFont.LineHeight(size);
        using var font = NewFont(size);
        var m = font.Metrics;
        return MathF.Ceiling(m.Descent - m.Ascent);
    }

    /// <summary>Advance width of <paramref name="text"/>.</summary>
    public float MeasureWidth(string text, float size)
    {
        ArgumentNullException.ThrowIfNull(text);
        CheckSize(size);
        if (typeface is null) return BitmapFont.MeasureWidth(text, size);
        using var paint = NewPaint(size, SKColors.Black);
        return paint.MeasureText(text);
    }

    /// <summary>Draws one line of text; (x, top) is the anchor given by <paramref name="align"/> at the top of the line box.</summary>
    public void Draw(SKCanvas canvas, string text, float x, float top, float size, SKColor color, TextAlign align = TextAlign.Left)
    {
        ArgumentNullException.ThrowIfNull(canvas);
        ArgumentNullException.ThrowIfNull(text);
        CheckSize(size);
        if (text.Length == 0) return;
        float width = MeasureWidth(text, size);
        float left = align switch
        {
            TextAlign.Center => x - width / 2,
            TextAlign.Right => x - width,
            _ => x,
        };
        if (typeface is null)
        {
            using var rectPaint = new SKPaint { Color = color, IsAntialias = false, Style = SKPaintStyle.Fill };
            BitmapFont.Draw(canvas, text, left, top, size, rectPaint);
            return;
        }
        using var paint = NewPaint(size, color);
        using var font = NewFont(size);
        canvas.DrawText(text, left, top - font.Metrics.Ascent, paint);
    }

    /// <summary>
    /// Draws text rotated by <paramref name="degrees"/> (clockwise, as Skia's y axis points down) about the anchor
    /// (x, y), where the anchor is the <paramref name="align"/> point of the line box's vertical middle.
    /// </summary>
    public void DrawRotated(SKCanvas canvas, string text, float x, float y, float size, SKColor color, float degrees, TextAlign align)
    {
        ArgumentNullException.ThrowIfNull(canvas);
        int saved = canvas.Save();
        canvas.Translate(x, y);
        canvas.RotateDegrees(degrees);
        Draw(canvas, text, 0, -LineHeight(size) / 2, size, color, align);
        canvas.RestoreToCount(saved);
    }

    /// <summary>
    /// Greedy word wrap at spaces and line breaks; only when a word alone is too wide does it also break after hyphens
    /// inside words. A piece still wider than <paramref name="maxWidth"/> keeps its own line.
    /// </summary>
    public IReadOnlyList<string> Wrap(string text, float size, float maxWidth)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lines = Wrap(text, size, maxWidth, breakHyphens: false);
        return lines.Any(l => MeasureWidth(l, size) > maxWidth) ? Wrap(text, size, maxWidth, breakHyphens: true) : lines;
    }

    List<string> Wrap(string text, float size, float maxWidth, bool breakHyphens)
    {
        var lines = new List<string>();
        foreach (var paragraph in text.Split('\n'))
        {
            var words = SplitWords(paragraph, breakHyphens);
            string current = "";
            foreach (var word in words)
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
    public string Truncate(string text, float size, float maxWidth)
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

    SKFont NewFont(float size) => new(typeface, size) { Edging = SKFontEdging.Antialias, Subpixel = false, Hinting = SKFontHinting.Slight };

    SKPaint NewPaint(float size, SKColor color) => new()
    {
        Typeface = typeface,
        TextSize = size,
        Color = color,
        IsAntialias = true,
        SubpixelText = false,
        LcdRenderText = false,
        HintingLevel = SKPaintHinting.Slight,
    };

    static void CheckSize(float size)
    {
        if (!(size > 0) || float.IsInfinity(size))
            throw new ArgumentOutOfRangeException(nameof(size), size, "The text size must be a positive number of pixels.");
    }

    public void Dispose() => typeface?.Dispose();
}
