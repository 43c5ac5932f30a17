using DiffII.Reporting;
using SkiaSharp;

namespace DiffII.Tests.Reporting;

public class ReportTextTests
{
    static SKBitmap Draw(string s, float size, int width = 200, int height = 40)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bitmap);
        canvas.Clear(SKColors.White);
        ReportText.Draw(canvas, s, 2, 2, size, SKColors.Black);
        canvas.Flush();
        return bitmap;
    }

    [Fact]
    public void BundledFont_IsDejaVuSans_AndDrawsTextButNothingForSpaces()
    {
        Assert.Equal(ReportFont.Family, ReportFont.Typeface.FamilyName);
        using (var font = new SKFont(ReportFont.Typeface, 12))
            Assert.True(font.ContainsGlyphs("Accuracy 0.79 ±×φ–…"));
        using var bitmap = Draw("Accuracy 0.79", 14);
        Assert.True(Pixels.Ink(bitmap, SKColors.White, new SKRectI(0, 0, 200, 40)) > 50);
        using var spaces = Draw("    ", 14);
        Assert.Equal(0, Pixels.Ink(spaces, SKColors.White, new SKRectI(0, 0, 200, 40)));
        Assert.True(ReportText.MeasureWidth("Accuracy 0.79", 14) > ReportText.MeasureWidth("Acc", 14));
        Assert.True(ReportText.LineHeight(28) > ReportText.LineHeight(14));
    }

    [Fact]
    public void Drawing_IsDeterministic()
    {
        using var a = Draw("Diff-II 0.79", 14);
        using var b = Draw("Diff-II 0.79", 14);
        Assert.Equal(a.Bytes, b.Bytes);
    }

    [Fact]
    public void Wrap_KeepsLinesWithinTheWidth_PreferringSpacesOverHyphens()
    {
        float width = Math.Max(ReportText.MeasureWidth("Diff-II w/o", 12), ReportText.MeasureWidth("two-stage", 12)) + 1;
        Assert.Equal(["Diff-II w/o", "two-stage"], ReportText.Wrap("Diff-II w/o two-stage", 12, width));
        Assert.Equal(["Real-", "Guidance"], ReportText.Wrap("Real-Guidance", 12, ReportText.MeasureWidth("Guidance", 12) + 1));
        float narrow = ReportText.MeasureWidth("brown fox", 12);
        Assert.All(ReportText.Wrap("the quick brown fox jumps over the lazy dog", 12, narrow), l => Assert.True(ReportText.MeasureWidth(l, 12) <= narrow, l));
        Assert.Equal(["one", "two"], ReportText.Wrap("one\ntwo", 12, 1000));
    }

    [Fact]
    public void Truncate_AddsAnEllipsisAndFits()
    {
        Assert.Equal("short", ReportText.Truncate("short", 12, 1000));
        string cut = ReportText.Truncate("Diff-II without the inversion pool", 12, 60);
        Assert.EndsWith("…", cut);
        Assert.True(ReportText.MeasureWidth(cut, 12) <= 60);
        Assert.StartsWith(cut[..^1], "Diff-II without the inversion pool");
    }

    [Fact]
    public void BadSizes_AreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ReportText.MeasureWidth("a", 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReportText.LineHeight(float.NaN));
    }
}
