using DiffII.Imaging;
using SkiaSharp;
using static TorchSharp.torch;

namespace DiffII.Tests.Imaging;

/// <summary>
/// The codec's own transforms. What happens to each kind of user image (broken, greyscale, RGBA, 16-bit, CMYK, EXIF,
/// 1×1, 8000×8000, decompression bombs) is a row of the reliability matrix (tests/DiffII.Reliability.Tests).
/// </summary>
public class ImageCodecTests
{
    static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format = SKEncodedImageFormat.Png, int quality = 100)
    {
        using var data = bitmap.Encode(format, quality);
        return data.ToArray();
    }

    static SKBitmap Gradient(int w, int h, SKColorType type = SKColorType.Rgba8888, SKAlphaType alpha = SKAlphaType.Unpremul)
    {
        var bmp = new SKBitmap(new SKImageInfo(w, h, type, alpha));
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++)
            bmp.SetPixel(x, y, new SKColor((byte)(255 * x / Math.Max(1, w - 1)), (byte)(255 * y / Math.Max(1, h - 1)), 80));
        return bmp;
    }

    [Fact]
    public void ToTensor_ResizesShorterSide_CropsCentre_AndScalesToMinusOneOne()
    {
        using var bmp = Gradient(64, 32);
        using var decoded = ImageCodec.Decode(Encode(bmp), "gradient.png");
        var t = ImageCodec.ToTensor(decoded, 16);
        Assert.Equal([3L, 16, 16], t.shape);
        Assert.InRange(t.min().item<float>(), -1f, 1f);
        Assert.InRange(t.max().item<float>(), -1f, 1f);
        // The centre crop keeps the middle half in x: red stays well inside (0, 255) at both edges.
        Assert.InRange(t[0, 8, 0].item<float>(), -0.7f, -0.3f);
        Assert.InRange(t[0, 8, 15].item<float>(), 0.3f, 0.7f);
        Assert.Equal(80 / 127.5f - 1, t[2, 3, 3].item<float>(), 2);
    }

    [Fact]
    public void Png_RoundTripsThroughTheTensor()
    {
        using var bmp = Gradient(20, 20);
        using var decoded = ImageCodec.Decode(Encode(bmp), "g.png");
        var t = ImageCodec.ToTensor(decoded, 20);
        using var again = ImageCodec.Decode(ImageCodec.ToPng(t), "again.png");
        Assert.True(ImageCodec.ToTensor(again, 20).allclose(t, atol: 1e-6));
    }

    [Theory]
    [InlineData(SKEncodedOrigin.TopRight)]
    [InlineData(SKEncodedOrigin.BottomRight)]
    [InlineData(SKEncodedOrigin.BottomLeft)]
    [InlineData(SKEncodedOrigin.LeftTop)]
    [InlineData(SKEncodedOrigin.RightTop)]
    [InlineData(SKEncodedOrigin.RightBottom)]
    [InlineData(SKEncodedOrigin.LeftBottom)]
    public void Orient_MovesTheTopLeftMarkerWhereTheExifOrientationSays(SKEncodedOrigin origin)
    {
        // A 3×2 image with a red marker at stored (0,0).
        using var bmp = new SKBitmap(new SKImageInfo(3, 2, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bmp.Erase(SKColors.Black);
        bmp.SetPixel(0, 0, SKColors.Red);
        using var oriented = ImageCodec.Orient(bmp, origin);
        // Where stored (0,0) lands in display coordinates, per the EXIF definitions.
        var expected = origin switch
        {
            SKEncodedOrigin.TopRight => (2, 0),
            SKEncodedOrigin.BottomRight => (2, 1),
            SKEncodedOrigin.BottomLeft => (0, 1),
            SKEncodedOrigin.LeftTop => (0, 0),
            SKEncodedOrigin.RightTop => (1, 0),
            SKEncodedOrigin.RightBottom => (1, 2),
            _ => (0, 2),
        };
        bool swapped = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        Assert.Equal(swapped ? 2 : 3, oriented.Width);
        Assert.Equal(SKColors.Red, oriented.GetPixel(expected.Item1, expected.Item2));
        Assert.Equal(1, oriented.Pixels.Count(c => c == SKColors.Red));
    }
}
