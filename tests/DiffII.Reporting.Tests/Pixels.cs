using SkiaSharp;

namespace DiffII.Tests.Reporting;

/// <summary>Decodes rendered PNGs and counts pixels for the reporting tests.</summary>
static class Pixels
{
    public static SKBitmap Decode(byte[] png)
    {
        Assert.NotEmpty(png);
        var bitmap = SKBitmap.Decode(png);
        Assert.NotNull(bitmap);
        return bitmap;
    }

    public static int Count(SKBitmap bitmap, SKColor color, SKRectI? region = null)
    {
        var r = region ?? new SKRectI(0, 0, bitmap.Width, bitmap.Height);
        int n = 0;
        for (int y = Math.Max(0, r.Top); y < Math.Min(bitmap.Height, r.Bottom); y++)
            for (int x = Math.Max(0, r.Left); x < Math.Min(bitmap.Width, r.Right); x++)
                if (Same(bitmap.GetPixel(x, y), color)) n++;
        return n;
    }

    /// <summary>Pixels that differ from the background (anti-aliased ink included).</summary>
    public static int Ink(SKBitmap bitmap, SKColor background, SKRectI region)
    {
        int n = 0;
        for (int y = Math.Max(0, region.Top); y < Math.Min(bitmap.Height, region.Bottom); y++)
            for (int x = Math.Max(0, region.Left); x < Math.Min(bitmap.Width, region.Right); x++)
                if (!Same(bitmap.GetPixel(x, y), background)) n++;
        return n;
    }

    /// <summary>Pixels darker than mid-grey in every channel (black strokes, anti-aliased or not).</summary>
    public static int Dark(SKBitmap bitmap, SKRectI region)
    {
        int n = 0;
        for (int y = Math.Max(0, region.Top); y < Math.Min(bitmap.Height, region.Bottom); y++)
            for (int x = Math.Max(0, region.Left); x < Math.Min(bitmap.Width, region.Right); x++)
                if (bitmap.GetPixel(x, y) is { Red: < 110, Green: < 110, Blue: < 110 }) n++;
        return n;
    }

    public static bool Same(SKColor a, SKColor b) => a.Red == b.Red && a.Green == b.Green && a.Blue == b.Blue && a.Alpha == b.Alpha;

    /// <summary>Bounding box of the pixels of one exact colour, or null when there are none.</summary>
    public static SKRectI? Bounds(SKBitmap bitmap, SKColor color, SKRectI? region = null)
    {
        var r = region ?? new SKRectI(0, 0, bitmap.Width, bitmap.Height);
        int left = int.MaxValue, top = int.MaxValue, right = -1, bottom = -1;
        for (int y = Math.Max(0, r.Top); y < Math.Min(bitmap.Height, r.Bottom); y++)
            for (int x = Math.Max(0, r.Left); x < Math.Min(bitmap.Width, r.Right); x++)
                if (Same(bitmap.GetPixel(x, y), color))
                {
                    left = Math.Min(left, x); top = Math.Min(top, y);
                    right = Math.Max(right, x); bottom = Math.Max(bottom, y);
                }
        return right < 0 ? null : new SKRectI(left, top, right + 1, bottom + 1);
    }
}
