using SkiaSharp;

namespace DiffII.TinyWorld;

/// <summary>Draws a Fashion-MNIST item into a <see cref="Scene"/>: pure arithmetic, so the same inputs give the same pixels everywhere.</summary>
public static class SceneRenderer
{
    public const int Size = 32;

    /// <summary>Renders to channel-major RGB floats in [0, 1] (3 × size × size).</summary>
    public static float[] Render(ReadOnlySpan<byte> item, Scene scene, int size = Size)
    {
        if (item.Length != FashionMnist.Side * FashionMnist.Side)
            throw new ArgumentException($"An item is {FashionMnist.Side}×{FashionMnist.Side} bytes; got {item.Length}.", nameof(item));
        var rgb = new float[3 * size * size];
        var second = SecondTone(scene.Background);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                float t = BackgroundMix(scene.Pattern, x, y, size);
                Set(rgb, size, x, y, Lerp(scene.Background.R, second.R, t), Lerp(scene.Background.G, second.G, t), Lerp(scene.Background.B, second.B, t));
            }

        int side = Math.Clamp((int)MathF.Round(FashionMnist.Side * scene.Scale), 8, size);
        int x0 = (size - side) / 2 + scene.OffsetX;
        int y0 = (size - side) / 2 + scene.OffsetY;
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                int px = x0 + x, py = y0 + y;
                if (px < 0 || py < 0 || px >= size || py >= size) continue;
                float ink = Bilinear(item, (x + 0.5f) * FashionMnist.Side / side - 0.5f, (y + 0.5f) * FashionMnist.Side / side - 0.5f) / 255f;
                float alpha = Math.Clamp(ink * 1.6f, 0f, 1f);
                if (alpha <= 0) continue;
                // Ink also shades the colour a little, so the item's texture (collars, laces, folds) stays visible.
                float shade = 0.55f + 0.45f * ink;
                int i = py * size + px;
                rgb[i] = Lerp(rgb[i], scene.Item.R * shade, alpha);
                rgb[size * size + i] = Lerp(rgb[size * size + i], scene.Item.G * shade, alpha);
                rgb[2 * size * size + i] = Lerp(rgb[2 * size * size + i], scene.Item.B * shade, alpha);
            }
        return rgb;
    }

    /// <summary>How far the background at (x, y) leans from its colour to its second tone (0 or 1 for patterns, a ramp for gradients).</summary>
    static float BackgroundMix(BackgroundPattern pattern, int x, int y, int size) => pattern switch
    {
        BackgroundPattern.Plain => 0f,
        BackgroundPattern.Gradient => (float)y / (size - 1),
        BackgroundPattern.Stripes => (x + y) / 3 % 2,
        BackgroundPattern.Checks => (x / 4 + y / 4) % 2,
        BackgroundPattern.Dots => (x % 6 - 2) * (x % 6 - 2) + (y % 6 - 2) * (y % 6 - 2) <= 2 ? 1f : 0f,
        _ => throw new ArgumentOutOfRangeException(nameof(pattern)),
    };

    /// <summary>The pattern's second tone: lighter for dark colours, darker for light ones.</summary>
    static NamedColor SecondTone(NamedColor c)
    {
        float luminance = 0.299f * c.R + 0.587f * c.G + 0.114f * c.B;
        return luminance < 0.5f
            ? c with { R = Lerp(c.R, 1, 0.45f), G = Lerp(c.G, 1, 0.45f), B = Lerp(c.B, 1, 0.45f) }
            : c with { R = c.R * 0.6f, G = c.G * 0.6f, B = c.B * 0.6f };
    }

    static float Bilinear(ReadOnlySpan<byte> item, float fx, float fy)
    {
        int n = FashionMnist.Side;
        fx = Math.Clamp(fx, 0, n - 1); fy = Math.Clamp(fy, 0, n - 1);
        int x0 = (int)fx, y0 = (int)fy;
        int x1 = Math.Min(x0 + 1, n - 1), y1 = Math.Min(y0 + 1, n - 1);
        float ax = fx - x0, ay = fy - y0;
        float top = Lerp(item[y0 * n + x0], item[y0 * n + x1], ax);
        float bottom = Lerp(item[y1 * n + x0], item[y1 * n + x1], ax);
        return Lerp(top, bottom, ay);
    }

    static float Lerp(float a, float b, float t) => a + (b - a) * t;

    static void Set(float[] rgb, int size, int x, int y, float r, float g, float b)
    {
        int i = y * size + x;
        rgb[i] = r; rgb[size * size + i] = g; rgb[2 * size * size + i] = b;
    }

    /// <summary>Encodes channel-major RGB floats in [0, 1] as a PNG.</summary>
    public static byte[] ToPng(float[] rgb, int size = Size)
    {
        if (rgb.Length != 3 * size * size) throw new ArgumentException($"Expected {3 * size * size} values for a {size}×{size} RGB image; got {rgb.Length}.", nameof(rgb));
        using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                int i = y * size + x;
                bitmap.SetPixel(x, y, new SKColor(ToByte(rgb[i]), ToByte(rgb[size * size + i]), ToByte(rgb[2 * size * size + i])));
            }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    static byte ToByte(float v) => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);
}
