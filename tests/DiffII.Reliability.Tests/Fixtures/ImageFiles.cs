using System.Buffers.Binary;
using System.IO.Compression;
using SkiaSharp;

namespace DiffII.Reliability.Tests.Fixtures;

/// <summary>
/// Image files of every kind the matrix feeds in, made here rather than committed: what Skia can encode is encoded
/// by Skia; 16-bit PNG and CMYK JPEG, which it cannot write, are written byte by byte (PNG chunks with CRC-32; a
/// baseline JPEG whose 8×8 blocks are flat, so only DC coefficients are coded).
/// </summary>
public static class ImageFiles
{
    public static byte[] Png(SKBitmap bitmap) => Encode(bitmap, SKEncodedImageFormat.Png, 100);
    public static byte[] Jpeg(SKBitmap bitmap, int quality = 90) => Encode(bitmap, SKEncodedImageFormat.Jpeg, quality);
    public static byte[] Webp(SKBitmap bitmap) => Encode(bitmap, SKEncodedImageFormat.Webp, 90);

    static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality)
    {
        using var data = bitmap.Encode(format, quality) ?? throw new InvalidOperationException($"Skia cannot encode {format}.");
        return data.ToArray();
    }

    public static SKBitmap Solid(int width, int height, SKColor colour)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bitmap.Erase(colour);
        return bitmap;
    }

    /// <summary>A gradient (red across, green down): every pixel different, so crops and rotations show.</summary>
    public static SKBitmap Gradient(int width, int height)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)(255 * x / Math.Max(1, width - 1)), (byte)(255 * y / Math.Max(1, height - 1)), 60));
        return bitmap;
    }

    public static byte[] GreyPng(int width, int height, byte level)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        bitmap.Erase(new SKColor(level, level, level));
        return Png(bitmap);
    }

    /// <summary>An RGBA PNG: the left half fully transparent, the right half red at alpha 128.</summary>
    public static byte[] RgbaPng(int width, int height)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, x < width / 2 ? new SKColor(0, 0, 0, 0) : new SKColor(255, 0, 0, 128));
        return Png(bitmap);
    }

    // ---- PNG, written by hand ----

    static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>A 16-bit-per-channel RGB PNG (colour type 2, bit depth 16) of one colour.</summary>
    public static byte[] Png16(int width, int height, ushort red, ushort green, ushort blue)
    {
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 16; // bit depth
        header[9] = 2;  // truecolour
        var raw = new MemoryStream();
        for (int y = 0; y < height; y++)
        {
            raw.WriteByte(0); // filter: none
            for (int x = 0; x < width; x++)
                foreach (ushort v in new[] { red, green, blue }) { raw.WriteByte((byte)(v >> 8)); raw.WriteByte((byte)v); }
        }
        return PngFile(header, raw.ToArray());
    }

    /// <summary>A PNG from an IHDR and raw (filtered) scanlines: the chunks with their CRCs.</summary>
    public static byte[] PngFile(byte[] ihdr, byte[] scanlines)
    {
        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true)) z.Write(scanlines);
        var file = new MemoryStream();
        file.Write(PngSignature);
        WriteChunk(file, "IHDR", ihdr);
        WriteChunk(file, "IDAT", compressed.ToArray());
        WriteChunk(file, "IEND", []);
        return file.ToArray();
    }

    static void WriteChunk(Stream stream, string type, byte[] data)
    {
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(four, data.Length);
        stream.Write(four);
        byte[] typeAndData = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        stream.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(four, Crc32(typeAndData));
        stream.Write(four);
    }

    /// <summary>Damages the compressed pixel data of a PNG and fixes the chunk's CRC, so only the data is wrong (not the framing).</summary>
    public static byte[] CorruptPngData(byte[] png, int seed = 1)
    {
        byte[] copy = (byte[])png.Clone();
        int at = 8;
        var random = new Random(seed);
        while (at + 8 <= copy.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(copy.AsSpan(at));
            string type = System.Text.Encoding.ASCII.GetString(copy, at + 4, 4);
            if (type == "IDAT")
            {
                // Keep the 2-byte zlib header; scramble the deflate stream after it.
                for (int i = at + 8 + 2; i < at + 8 + length; i++) copy[i] = (byte)random.Next(256);
                BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(at + 8 + length), Crc32(copy.AsSpan(at + 4, 4 + length)));
                return copy;
            }
            at += 12 + length;
        }
        throw new ArgumentException("No IDAT chunk.", nameof(png));
    }

    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    // ---- JPEG, written by hand ----

    /// <summary>
    /// A baseline JPEG with 1, 3 or 4 components, no subsampling, quantisation 1, where every 8×8 block is flat:
    /// <paramref name="block"/>(bx, by) gives each component's sample value for block (bx, by). Four components are
    /// written as Adobe CMYK (APP14, transform 0), the way Photoshop writes print images.
    /// </summary>
    public static byte[] FlatBlockJpeg(int width, int height, int components, Func<int, int, byte[]> block)
    {
        if (width % 8 != 0 || height % 8 != 0) throw new ArgumentException("Width and height must be multiples of 8.");
        var file = new MemoryStream();
        file.Write([0xFF, 0xD8]);
        if (components == 4)
            Segment(file, 0xEE, [(byte)'A', (byte)'d', (byte)'o', (byte)'b', (byte)'e', 0x00, 0x64, 0, 0, 0, 0, 0]);
        Segment(file, 0xDB, [0x00, .. Enumerable.Repeat((byte)1, 64)]);
        var frame = new List<byte> { 8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, (byte)components };
        for (int c = 0; c < components; c++) frame.AddRange([(byte)(c + 1), 0x11, 0x00]);
        Segment(file, 0xC0, [.. frame]);
        Segment(file, 0xC4, [0x00, .. DcBits, .. DcValues]);
        Segment(file, 0xC4, [0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]); // AC: only end-of-block, code "0"
        var scan = new List<byte> { (byte)components };
        for (int c = 0; c < components; c++) scan.AddRange([(byte)(c + 1), 0x00]);
        scan.AddRange([0, 63, 0]);
        Segment(file, 0xDA, [.. scan]);

        var bits = new BitWriter(file);
        var previous = new int[components];
        var dcCodes = CanonicalCodes(DcBits, DcValues);
        for (int by = 0; by < height / 8; by++)
            for (int bx = 0; bx < width / 8; bx++)
            {
                byte[] values = block(bx, by);
                for (int c = 0; c < components; c++)
                {
                    // A flat block of value v has DC coefficient 8·(v − 128) under quantisation 1.
                    int dc = 8 * (values[c] - 128);
                    int diff = dc - previous[c];
                    previous[c] = dc;
                    int size = diff == 0 ? 0 : 32 - int.LeadingZeroCount(Math.Abs(diff));
                    var (code, length) = dcCodes[size];
                    bits.Write(code, length);
                    if (size > 0) bits.Write(diff > 0 ? diff : diff + (1 << size) - 1, size);
                    bits.Write(0, 1); // end of block
                }
            }
        bits.Flush();
        file.Write([0xFF, 0xD9]);
        return file.ToArray();
    }

    // The standard luminance DC table (ITU T.81, K.3).
    static readonly byte[] DcBits = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    static readonly byte[] DcValues = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

    static Dictionary<int, (int Code, int Length)> CanonicalCodes(byte[] bits, byte[] values)
    {
        var codes = new Dictionary<int, (int, int)>();
        int code = 0, k = 0;
        for (int length = 1; length <= 16; length++)
        {
            for (int i = 0; i < bits[length - 1]; i++) codes[values[k++]] = (code++, length);
            code <<= 1;
        }
        return codes;
    }

    static void Segment(Stream stream, byte marker, byte[] payload)
    {
        stream.Write([0xFF, marker, (byte)((payload.Length + 2) >> 8), (byte)(payload.Length + 2)]);
        stream.Write(payload);
    }

    sealed class BitWriter(Stream stream)
    {
        int _buffer, _count;

        public void Write(int value, int length)
        {
            for (int i = length - 1; i >= 0; i--)
            {
                _buffer = (_buffer << 1) | ((value >> i) & 1);
                if (++_count == 8) Emit();
            }
        }

        void Emit()
        {
            stream.WriteByte((byte)_buffer);
            if (_buffer == 0xFF) stream.WriteByte(0x00); // byte stuffing
            _buffer = 0;
            _count = 0;
        }

        public void Flush()
        {
            while (_count != 0) Write(1, 1); // pad with ones
        }
    }

    /// <summary>The JPEG with an EXIF APP1 segment carrying <paramref name="orientation"/> (1–8) inserted after SOI.</summary>
    public static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        if (jpeg.Length < 2 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) throw new ArgumentException("Not a JPEG.", nameof(jpeg));
        byte[] tiff =
        [
            (byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8, // big-endian TIFF header, IFD at offset 8
            0, 1,                                    // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1, (byte)(orientation >> 8), (byte)orientation, 0, 0, // Orientation, SHORT, 1 value
            0, 0, 0, 0,                              // no next IFD
        ];
        byte[] payload = [(byte)'E', (byte)'x', (byte)'i', (byte)'f', 0, 0, .. tiff];
        var file = new MemoryStream();
        file.Write(jpeg.AsSpan(0, 2));
        Segment(file, 0xE1, payload);
        file.Write(jpeg.AsSpan(2));
        return file.ToArray();
    }
}
