using DiffII.Diffusion.Runtime;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Imaging;

/// <summary>An image that cannot be used; the message names its source and what is wrong with it.</summary>
public sealed class ImageDecodeException(string source, string reason, Exception? inner = null)
    : Exception($"{source}: {reason}", inner)
{
    public string ImageSource { get; } = source;
    public string Reason { get; } = reason;
}

/// <summary>
/// Turns user images (any format Skia decodes: PNG, JPEG incl. CMYK, WebP, GIF, BMP, ICO; grey, RGBA, 16-bit) into
/// the RGB tensors Stable Diffusion expects, and tensors back into PNG files. EXIF orientation is applied, alpha is
/// composited over white, and large JPEGs are decoded at a reduced scale so an 8000×8000 photo never costs 256 MB.
/// </summary>
public static class ImageCodec
{
    /// <summary>
    /// The most pixels an image may decode to (about 179 megapixels, Pillow's decompression-bomb limit): a few hundred
    /// bytes of PNG can claim 100 000 × 100 000 pixels, and allocating 40 GB for them is not an answer.
    /// </summary>
    public const long MaxDecodedPixels = 178_956_970;

    /// <summary>
    /// The widest aspect ratio accepted. Images are resized so their shorter side is the model's size: a 1×500 000
    /// strip of a 2 KB PNG would become 8 million × 16 pixels (gigabytes) before any check on the decoded size.
    /// </summary>
    public const int MaxAspectRatio = 25;

    /// <summary>The longest side accepted (JPEG's and WebP's own limit; Skia fails beyond it without naming the file).</summary>
    public const int MaxSide = 65_535;

    /// <summary>Refuses, from the header's dimensions alone, a shape that no decode or resize should be attempted on.</summary>
    public static void CheckShape(string source, int width, int height)
    {
        if (Math.Max(width, height) > MaxSide)
            throw new ImageDecodeException(source, $"the image is too large to decode: {width}×{height} pixels; a side longer than {MaxSide} is refused before decoding. Resize it first; if it is not that large, the file is damaged or hostile.");
        if (Math.Max(width, height) > (long)MaxAspectRatio * Math.Min(width, height))
            throw new ImageDecodeException(source, $"the image is {width}×{height} pixels, more than {MaxAspectRatio}:1; resizing its shorter side to the model's size would take far more memory than the image. Crop it first.");
    }

    /// <summary>Decodes, orients and flattens an image to opaque RGBA (8 bits per channel).</summary>
    /// <param name="data">The encoded file.</param>
    /// <param name="source">Names the image in errors (a path or a row id).</param>
    /// <param name="minSide">When given, large images may be decoded at a reduced scale whose shorter side is still at least this.</param>
    public static SKBitmap Decode(ReadOnlySpan<byte> data, string source, int? minSide = null)
    {
        if (data.Length == 0) throw new ImageDecodeException(source, "the file is empty (0 bytes).");
        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData)
            ?? throw new ImageDecodeException(source, "not a recognised image (PNG, JPEG, WebP, GIF, BMP or ICO expected).");

        var full = codec.Info;
        if (full.Width <= 0 || full.Height <= 0) throw new ImageDecodeException(source, $"the image has no pixels ({full.Width}×{full.Height}).");
        CheckShape(source, full.Width, full.Height);
        var size = new SKSizeI(full.Width, full.Height);
        if (minSide is int wanted && Math.Min(full.Width, full.Height) > 2 * wanted)
        {
            float scale = (float)wanted / Math.Min(full.Width, full.Height);
            var scaled = codec.GetScaledDimensions(scale);
            if (Math.Min(scaled.Width, scaled.Height) >= wanted) size = scaled;
        }

        if ((long)size.Width * size.Height > MaxDecodedPixels)
            throw new ImageDecodeException(source, $"the image is too large to decode: {full.Width}×{full.Height} pixels " +
                $"({(long)full.Width * full.Height / 1_000_000} megapixels; the limit is {MaxDecodedPixels / 1_000_000}). Resize it first; if it is not that large, the file is damaged or hostile.");
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var bitmap = new SKBitmap();
        try
        {
            if (!bitmap.TryAllocPixels(info))
                throw new ImageDecodeException(source, $"there is not enough memory to decode its {size.Width}×{size.Height} pixels.");
            var result = codec.GetPixels(info, bitmap.GetPixels());
            if (result == SKCodecResult.IncompleteInput)
                throw new ImageDecodeException(source, "the file is truncated (the decoder ran out of data); it would train on a partly grey image.");
            if (result is SKCodecResult.ErrorInInput or SKCodecResult.InvalidInput)
                throw new ImageDecodeException(source, $"the file is damaged: the decoder found invalid data ({result}).");
            if (result != SKCodecResult.Success)
                throw new ImageDecodeException(source, $"the decoder failed ({result}).");
            if (full.AlphaType != SKAlphaType.Opaque) FlattenOverWhite(bitmap);
            var oriented = Orient(bitmap, codec.EncodedOrigin);
            if (!ReferenceEquals(oriented, bitmap)) bitmap.Dispose();
            return oriented;
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
    }

    /// <summary>Reads and decodes a file; errors name the path.</summary>
    public static SKBitmap DecodeFile(string path, int? minSide = null)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ImageDecodeException(path, $"cannot be read ({e.Message}).", e); }
        return Decode(bytes, path, minSide);
    }

    /// <summary>
    /// The diffusers training transform: resize so the shorter side is <paramref name="resolution"/>, centre-crop a
    /// square, scale to [−1, 1]. Returns [3, resolution, resolution] float32 on the CPU.
    /// </summary>
    public static Tensor ToTensor(SKBitmap bitmap, int resolution)
    {
        if (resolution <= 0) throw new ArgumentOutOfRangeException(nameof(resolution), "The resolution must be positive.");
        double scale = (double)resolution / Math.Min(bitmap.Width, bitmap.Height);
        int w = Math.Max(resolution, (int)Math.Round(bitmap.Width * scale));
        int h = Math.Max(resolution, (int)Math.Round(bitmap.Height * scale));
        using var resized = w == bitmap.Width && h == bitmap.Height
            ? bitmap.Copy()
            : bitmap.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKCubicResampler.Mitchell)) // what SKFilterQuality.High meant
              ?? throw new InvalidOperationException($"Skia could not resize a {bitmap.Width}×{bitmap.Height} image to {w}×{h}.");
        int left = (w - resolution) / 2, top = (h - resolution) / 2;

        var pixels = resized.Pixels; // unpremultiplied RGBA after FlattenOverWhite: alpha is 255
        var values = new float[3 * resolution * resolution];
        int plane = resolution * resolution;
        for (int y = 0; y < resolution; y++)
            for (int x = 0; x < resolution; x++)
            {
                var c = pixels[(top + y) * w + left + x];
                int i = y * resolution + x;
                values[i] = c.Red / 127.5f - 1f;
                values[plane + i] = c.Green / 127.5f - 1f;
                values[2 * plane + i] = c.Blue / 127.5f - 1f;
            }
        return tensor(values, [3, resolution, resolution]);
    }

    /// <summary>Encodes [3, H, W] values in [−1, 1] (clamped) as a PNG.</summary>
    public static byte[] ToPng(Tensor image)
    {
        if (image.dim() != 3 || image.shape[0] != 3)
            throw new ArgumentException($"Expected an image tensor [3, H, W]; got [{string.Join(", ", image.shape)}].", nameof(image));
        int h = (int)image.shape[1], w = (int)image.shape[2];
        using var scope = NewDisposeScope();
        var bytes = image.detach().to(ScalarType.Float32, CPU).Clamp(-1, 1).Add(1).Mul(127.5).round().to(ScalarType.Byte)
            .permute(1, 2, 0).contiguous().data<byte>().ToArray();
        using var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var pixels = new SKColor[w * h];
        for (int i = 0; i < w * h; i++) pixels[i] = new SKColor(bytes[3 * i], bytes[3 * i + 1], bytes[3 * i + 2]);
        bitmap.Pixels = pixels;
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Composites unpremultiplied RGBA over white in place, one row at a time (a managed copy of a whole large image would cost as much as the image).</summary>
    static void FlattenOverWhite(SKBitmap bitmap)
    {
        var row = new byte[bitmap.Width * 4];
        nint pixels = bitmap.GetPixels();
        for (int y = 0; y < bitmap.Height; y++)
        {
            nint start = pixels + y * bitmap.RowBytes;
            System.Runtime.InteropServices.Marshal.Copy(start, row, 0, row.Length);
            bool changed = false;
            for (int i = 0; i < row.Length; i += 4)
            {
                byte alpha = row[i + 3];
                if (alpha == 255) continue;
                float a = alpha / 255f;
                row[i] = Blend(row[i], a);
                row[i + 1] = Blend(row[i + 1], a);
                row[i + 2] = Blend(row[i + 2], a);
                row[i + 3] = 255;
                changed = true;
            }
            if (changed) System.Runtime.InteropServices.Marshal.Copy(row, 0, start, row.Length);
        }
        static byte Blend(byte v, float a) => (byte)Math.Round(v * a + 255 * (1 - a));
    }

    /// <summary>Applies an EXIF orientation so the pixels are in display order.</summary>
    internal static SKBitmap Orient(SKBitmap source, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft) return source;
        int w = source.Width, h = source.Height;
        bool swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        int ow = swap ? h : w, oh = swap ? w : h;
        var src = source.Pixels;
        var dst = new SKColor[ow * oh];
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
            {
                (int sx, int sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (w - 1 - x, y),          // mirrored horizontally
                    SKEncodedOrigin.BottomRight => (w - 1 - x, h - 1 - y), // rotated 180°
                    SKEncodedOrigin.BottomLeft => (x, h - 1 - y),        // mirrored vertically
                    SKEncodedOrigin.LeftTop => (y, x),                   // transposed
                    SKEncodedOrigin.RightTop => (y, h - 1 - x),          // needs 90° clockwise
                    SKEncodedOrigin.RightBottom => (w - 1 - y, h - 1 - x), // transversed
                    SKEncodedOrigin.LeftBottom => (w - 1 - y, x),        // needs 90° counter-clockwise
                    _ => (x, y),
                };
                dst[y * ow + x] = src[sy * w + sx];
            }
        var result = new SKBitmap(new SKImageInfo(ow, oh, SKColorType.Rgba8888, SKAlphaType.Unpremul)) { Pixels = dst };
        return result;
    }
}
