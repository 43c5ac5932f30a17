using DiffII.Reporting;
using SkiaSharp;

namespace DiffII.Tests.Reporting;

public class TextRendererTests
{
    static SKBitmap Draw(TextRenderer text, string s, float size, int width = 200, int height = 40)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bitmap);
        canvas.Clear(SKColors.White);
        text.Draw(canvas, s, 2, 2, size, SKColors.Black);
        canvas.Flush();
        return bitmap;
    }

    [Fact]
    public void BuiltInFont_IsUsedWhenForced_AndDrawsInkForTextButNothingForSpaces()
    {
        using var text = TextRenderer.Create(FontOptions.BuiltIn);
        Assert.Equal(FontKind.BuiltIn, text.Kind);
        Assert.Null(text.FontPath);

        using var spaces = Draw(text, "     ", 14);
        Assert.Equal(0, Pixels.Ink(spaces, SKColors.White, new SKRectI(0, 0, 200, 40)));

        // "A B": ink under the first and third glyph cells, none under the space between them.
        int scale = BitmapFont.ScaleFor(14), advance = (BitmapFont.GlyphWidth + BitmapFont.Spacing) * scale;
        using var ab = Draw(text, "A B", 14);
        var first = new SKRectI(2, 0, 2 + BitmapFont.GlyphWidth * scale, 40);
        var gap = new SKRectI(2 + advance, 0, 2 + advance + BitmapFont.GlyphWidth * scale, 40);
        var third = new SKRectI(2 + 2 * advance, 0, 2 + 2 * advance + BitmapFont.GlyphWidth * scale, 40);
        Assert.True(Pixels.Count(ab, SKColors.Black, first) > 5 * scale * scale);
        Assert.Equal(0, Pixels.Ink(ab, SKColors.White, gap));
        Assert.True(Pixels.Count(ab, SKColors.Black, third) > 5 * scale * scale);
        // Crisp pixels: nothing but black and white.
        Assert.Equal(200 * 40, Pixels.Count(ab, SKColors.Black) + Pixels.Count(ab, SKColors.White));
        Assert.Equal(3 * advance - scale, text.MeasureWidth("A B", 14));
    }

    [Fact]
    public void BuiltInFont_HasAGlyphWithInkForEveryPrintableAsciiCharacter()
    {
        for (char c = (char)33; c <= (char)126; c++)
        {
            Assert.True(BitmapFont.Has(c), $"no glyph for '{c}'");
            var g = BitmapFont.Glyph(c);
            bool ink = false;
            foreach (var bit in g) ink |= bit;
            Assert.True(ink, $"glyph '{c}' is blank");
        }
        Assert.True(BitmapFont.Has(' '));
        foreach (var c in "±×φ") Assert.True(BitmapFont.Has(c), $"no glyph for '{c}'");
        // Distinct glyphs for characters that are easy to confuse.
        Assert.NotEqual(Flatten(BitmapFont.Glyph('0')), Flatten(BitmapFont.Glyph('O')));
        Assert.NotEqual(Flatten(BitmapFont.Glyph('1')), Flatten(BitmapFont.Glyph('l')));
        // Unknown characters get the box, not nothing.
        Assert.False(BitmapFont.Has('€'));
        Assert.Contains(true, Flatten(BitmapFont.Glyph('€')));

        static bool[] Flatten(bool[,] g) => g.Cast<bool>().ToArray();
    }

    [Fact]
    public void BuiltInFont_BiggerSizesUseBiggerPixels()
    {
        using var text = TextRenderer.Create(FontOptions.BuiltIn);
        Assert.True(text.LineHeight(28) >= 2 * text.LineHeight(12));
        using var small = Draw(text, "H", 12, 100, 100);
        using var big = Draw(text, "H", 28, 100, 100);
        Assert.True(Pixels.Count(big, SKColors.Black) >= 4 * Pixels.Count(small, SKColors.Black));
    }

    [Fact]
    public void DefaultFont_IsTheEnvironmentsOrAWellKnownFontFile_AndDrawsText()
    {
        string? expected = Environment.GetEnvironmentVariable(FontOptions.EnvironmentVariable) is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : TextRenderer.WellKnownFontPaths().FirstOrDefault(File.Exists);
        using var text = TextRenderer.Create();
        if (expected is null)
        {
            Assert.Equal(FontKind.BuiltIn, text.Kind);
            return;
        }
        Assert.Equal(FontKind.FontFile, text.Kind);
        Assert.Equal(expected, text.FontPath);
        using var bitmap = Draw(text, "Accuracy 0.79", 14);
        Assert.True(Pixels.Ink(bitmap, SKColors.White, new SKRectI(0, 0, 200, 40)) > 50);
        using var spaces = Draw(text, "    ", 14);
        Assert.Equal(0, Pixels.Ink(spaces, SKColors.White, new SKRectI(0, 0, 200, 40)));
        Assert.True(text.MeasureWidth("Accuracy 0.79", 14) > text.MeasureWidth("Acc", 14));
    }

    [Fact]
    public void ExplicitFontPath_ThatIsMissingOrNotAFont_FailsNamingThePath()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-font-{Guid.NewGuid():N}.ttf");
        var e = Assert.Throws<ArgumentException>(() => TextRenderer.Create(new FontOptions(FontPath: missing)));
        Assert.Contains(missing, e.Message);

        var junk = Path.Combine(Path.GetTempPath(), $"not-a-font-{Guid.NewGuid():N}.ttf");
        File.WriteAllText(junk, "this is not a font");
        try
        {
            e = Assert.Throws<ArgumentException>(() => TextRenderer.Create(new FontOptions(FontPath: junk)));
            Assert.Contains(junk, e.Message);
        }
        finally { File.Delete(junk); }
    }

    [Fact]
    public void Wrap_KeepsLinesWithinTheWidth_PreferringSpacesOverHyphens()
    {
        using var text = TextRenderer.Create(FontOptions.BuiltIn);
        float glyph = text.MeasureWidth("x", 12) + BitmapFont.ScaleFor(12); // one advance
        var lines = text.Wrap("Diff-II w/o two-stage", 12, 12 * glyph);
        Assert.Equal(["Diff-II w/o", "two-stage"], lines);
        lines = text.Wrap("Real-Guidance", 12, 8 * glyph);
        Assert.Equal(["Real-", "Guidance"], lines);
        Assert.All(text.Wrap("the quick brown fox jumps over the lazy dog", 12, 10 * glyph), l => Assert.True(text.MeasureWidth(l, 12) <= 10 * glyph, l));
        Assert.Equal(["one", "two"], text.Wrap("one\ntwo", 12, 1000));
    }

    [Fact]
    public void Truncate_AddsAnEllipsisAndFits()
    {
        using var text = TextRenderer.Create(FontOptions.BuiltIn);
        Assert.Equal("short", text.Truncate("short", 12, 1000));
        string cut = text.Truncate("Diff-II without the inversion pool", 12, 60);
        Assert.EndsWith("…", cut);
        Assert.True(text.MeasureWidth(cut, 12) <= 60);
        Assert.StartsWith(cut[..^1], "Diff-II without the inversion pool");
    }

    [Fact]
    public void BadSizes_AreRejected()
    {
        using var text = TextRenderer.Create(FontOptions.BuiltIn);
        Assert.Throws<ArgumentOutOfRangeException>(() => text.MeasureWidth("a", 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => text.LineHeight(float.NaN));
    }
}
