using DiffII.Reporting;
using SkiaSharp;

namespace DiffII.Tests.Reporting;

public class ImageGridTests
{
    /// <summary>A small image whose every pixel has a colour no other test image uses.</summary>
    static SKBitmap Distinct(int id, int width = 4, int height = 4)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)(40 + 50 * id), (byte)(10 + 30 * x), (byte)(10 + 30 * y)));
        return bitmap;
    }

    static byte[] Png(SKBitmap bitmap)
    {
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    static void AssertUpscaledAt(SKBitmap grid, SKBitmap source, int left, int top, int scale)
    {
        for (int y = 0; y < source.Height * scale; y++)
            for (int x = 0; x < source.Width * scale; x++)
                Assert.True(Pixels.Same(source.GetPixel(x / scale, y / scale), grid.GetPixel(left + x, top + y)),
                    $"pixel ({left + x}, {top + y}) is {grid.GetPixel(left + x, top + y)}, expected {source.GetPixel(x / scale, y / scale)}");
    }

    [Fact]
    public void CellsHoldTheImages_UpscaledByNearestNeighbour_AtThePaddedPositions()
    {
        var images = Enumerable.Range(0, 4).Select(i => Distinct(i)).ToArray();
        try
        {
            var png = ImageGrid.RenderPng([[images[0], images[1]], [images[2], images[3]]], new ImageGridOptions { Scale = 3, Padding = 5 });
            using var grid = Pixels.Decode(png);
            Assert.Equal((5 + 12 + 5 + 12 + 5, 5 + 12 + 5 + 12 + 5), (grid.Width, grid.Height));
            AssertUpscaledAt(grid, images[0], 5, 5, 3);
            AssertUpscaledAt(grid, images[1], 22, 5, 3);
            AssertUpscaledAt(grid, images[2], 5, 22, 3);
            AssertUpscaledAt(grid, images[3], 22, 22, 3);
            Assert.True(Pixels.Same(SKColors.White, grid.GetPixel(19, 19)), "padding is background");
            Assert.Equal(png, ImageGrid.RenderPng([[images[0], images[1]], [images[2], images[3]]], new ImageGridOptions { Scale = 3, Padding = 5 }));
        }
        finally { foreach (var i in images) i.Dispose(); }
    }

    [Fact]
    public void EncodedImages_GiveTheSameGridAsBitmaps()
    {
        using var a = Distinct(0);
        using var b = Distinct(1);
        var options = new ImageGridOptions { Scale = 2, ColumnLabels = ["a", "b"] };
        Assert.Equal(ImageGrid.RenderPng([[a, b]], options), ImageGrid.RenderPng([[Png(a), Png(b)]], options));
        var e = Assert.Throws<DiffII.Imaging.ImageDecodeException>(() => ImageGrid.RenderPng([[Png(a), new byte[] { 1, 2, 3 }]], options));
        Assert.Contains("row 0, column 1", e.Message);
    }

    [Fact]
    public void Labels_ShiftTheCells_AndAddInkLeftAndAbove()
    {
        using var a = Distinct(0);
        using var b = Distinct(1);
        var options = new ImageGridOptions { Scale = 3, Padding = 4, RowLabels = ["golden retriever"], ColumnLabels = ["Original", "Diff-II"] };
        using var grid = Pixels.Decode(ImageGrid.RenderPng([[a, b]], options));
        var first = Pixels.Bounds(grid, a.GetPixel(0, 0))!.Value;
        Assert.Equal(3, first.Width);
        AssertUpscaledAt(grid, a, first.Left, first.Top, 3);
        AssertUpscaledAt(grid, b, first.Left + 12 + 4, first.Top, 3);
        Assert.True(Pixels.Ink(grid, SKColors.White, new SKRectI(0, first.Top, first.Left - 2, first.Top + 12)) > 20, "row label");
        Assert.True(Pixels.Ink(grid, SKColors.White, new SKRectI(first.Left, 0, first.Left + 12, first.Top - 1)) > 10, "column label");
    }

    [Fact]
    public void FixedCellSize_FitsAndCentresTheImage_AndNullCellsArePlaceholders()
    {
        using var wide = Distinct(0, 4, 2);
        var options = new ImageGridOptions { CellWidth = 12, CellHeight = 12, Padding = 0 };
        using var grid = Pixels.Decode(ImageGrid.RenderPng([[wide, null]], options));
        Assert.Equal((24, 12), (grid.Width, grid.Height));
        AssertUpscaledAt(grid, wide, 0, 3, 3);
        Assert.Equal(144, Pixels.Count(grid, options.MissingCellColor, new SKRectI(12, 0, 24, 12)));
    }

    [Fact]
    public void InterpolationStrip_PutsACaptionUnderEachImage()
    {
        var images = Enumerable.Range(0, 3).Select(i => Distinct(i)).ToArray();
        try
        {
            var png = ImageGrid.InterpolationStripPng(images, ["φ=0.0", "φ=0.5", "φ=1.0"], new ImageGridOptions { Scale = 4 });
            using var strip = Pixels.Decode(png);
            var first = Pixels.Bounds(strip, images[0].GetPixel(0, 0))!.Value;
            Assert.Equal(4, first.Top);
            for (int i = 0; i < 3; i++)
            {
                int left = first.Left + i * (16 + 4);
                AssertUpscaledAt(strip, images[i], left, first.Top, 4);
                Assert.True(Pixels.Ink(strip, SKColors.White, new SKRectI(left, first.Top + 16 + 1, left + 16, strip.Height)) > 10, $"caption {i}");
            }
            Assert.Throws<ArgumentException>(() => ImageGrid.InterpolationStripPng(images, ["only one"]));
        }
        finally { foreach (var i in images) i.Dispose(); }
    }

    [Fact]
    public void BadInput_IsRejected()
    {
        using var a = Distinct(0);
        Assert.Throws<ArgumentException>(() => ImageGrid.RenderPng(Array.Empty<IReadOnlyList<SKBitmap?>>()));
        Assert.Throws<ArgumentException>(() => ImageGrid.RenderPng([[a]], new ImageGridOptions { RowLabels = ["x", "y"] }));
        Assert.Throws<ArgumentException>(() => ImageGrid.RenderPng([[a]], new ImageGridOptions { ColumnLabels = ["x", "y"] }));
        Assert.Throws<ArgumentException>(() => ImageGrid.RenderPng([[a]], new ImageGridOptions { Scale = 0 }));
        Assert.Throws<ArgumentException>(() => ImageGrid.RenderPng([[(SKBitmap?)null]]));
    }
}
