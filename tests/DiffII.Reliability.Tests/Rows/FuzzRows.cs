using System.Diagnostics;
using System.Text;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Runtime;
using DiffII.Imaging;
using DiffII.Reliability.Tests.Fixtures;
using DiffII.Reliability.Tests.Matrix;
using SkiaSharp;
using static TorchSharp.torch;

namespace DiffII.Reliability.Tests.Rows;

/// <summary>
/// Fuzz: seeded loops of random and mutated bytes into the image loader and the safetensors reader. Whatever the
/// bytes, the only exceptions allowed are our typed ones; no crash, no hang, no allocation a header merely asks for.
/// A failure names the seed and iteration, so it replays exactly.
/// </summary>
public static class FuzzRows
{
    const int Iterations = 2500;

    // A hang detector, not a speed test: a legitimate 119-megapixel GIF (under ImageCodec.MaxDecodedPixels) took 2.7 s
    // on a loaded 2-core CI host and failed a 2 s limit. Speed belongs to the bench.
    static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(30);

    public static IEnumerable<MatrixRow> All =>
    [
        MatrixRow.Sync("fuzz.image-loader.library", Area.Fuzz, Layer.Library,
            $"{Iterations} random and mutated files (PNG, JPEG incl. CMYK, GIF, BMP, WebP, 16-bit PNG) into the image loader",
            "each decodes or fails with ImageDecodeException naming it; nothing else is thrown, no decode hangs (30 s)", _ => Images(seed: 7)),
        MatrixRow.Sync("fuzz.safetensors.library", Area.Fuzz, Layer.Library,
            $"{Iterations} random, mutated and hostile safetensors files (lying headers: huge or overflowing shapes, overlapping or out-of-file offsets, wrong JSON types)",
            "each opens and loads or fails with SafeTensorsException naming the file; nothing else is thrown; no allocation beyond the file's size", s => SafeTensors(s, seed: 7)),
    ];

    static void Check(int seed, int iteration, byte[] input, Action run, Func<Exception, bool> allowed, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        try { run(); }
        catch (Exception e) when (allowed(e)) { }
        catch (Exception e)
        {
            Assert.Fail($"seed {seed}, iteration {iteration}: {e.GetType().Name}: {e.Message}\ninput ({input.Length} bytes) starts {Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 160)))}\n{e}");
        }
        Assert.True(clock.Elapsed < limit, $"seed {seed}, iteration {iteration}: took {clock.Elapsed.TotalSeconds:0.0} s (input {Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 160)))})");
    }

    /// <summary>Flips, overwrites, inserts, deletes or truncates a few bytes of <paramref name="data"/>.</summary>
    static byte[] Mutate(Random random, byte[] data)
    {
        var bytes = new List<byte>(data);
        int edits = 1 + random.Next(8);
        for (int k = 0; k < edits && bytes.Count > 0; k++)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(6))
            {
                case 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;
                case 1: bytes[at] = (byte)random.Next(256); break;
                case 2: bytes.Insert(at, (byte)random.Next(256)); break;
                case 3: bytes.RemoveAt(at); break;
                case 4: bytes.RemoveRange(at, bytes.Count - at); break;
                default: bytes[at] = random.Next(2) == 0 ? (byte)0xFF : (byte)0x00; break;
            }
        }
        return [.. bytes];
    }

    // ---- the image loader ----

    static void Images(int seed)
    {
        using var photo = ImageFiles.Gradient(24, 16);
        using var alpha = new SKBitmap(new SKImageInfo(12, 12, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        alpha.Erase(new SKColor(10, 200, 30, 100));
        byte[][] valid =
        [
            ImageFiles.Png(photo), ImageFiles.Jpeg(photo), ImageFiles.Webp(photo), ImageFiles.Png(alpha),
            Encode(photo, SKEncodedImageFormat.Gif), Encode(photo, SKEncodedImageFormat.Bmp),
            ImageFiles.FlatBlockJpeg(16, 16, 4, (x, y) => [(byte)(40 * x), 90, (byte)(60 * y), 200]),
            ImageFiles.Png16(8, 8, 0x1000, 0x8000, 0xF000), ImageFiles.WithExifOrientation(ImageFiles.Jpeg(photo), 6),
        ];
        byte[][] signatures = [[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A], [0xFF, 0xD8, 0xFF], "GIF89a"u8.ToArray(), "BM"u8.ToArray(), "RIFF\0\0\0\0WEBPVP8 "u8.ToArray()];
        var random = new Random(seed);
        for (int i = 0; i < Iterations; i++)
        {
            byte[] input = (i % 4) switch
            {
                0 => RandomBytes(random, random.Next(512)),
                1 => [.. signatures[random.Next(signatures.Length)], .. RandomBytes(random, random.Next(256))],
                _ => Mutate(random, valid[random.Next(valid.Length)]),
            };
            int? minSide = random.Next(3) == 0 ? null : 8 + random.Next(24);
            string name = $"fuzz-{i}.img";
            Check(seed, i, input, () =>
            {
                using var bitmap = ImageCodec.Decode(input, name, minSide);
                using var _ = ImageCodec.ToTensor(bitmap, minSide ?? 16);
            }, e => e is ImageDecodeException d && d.ImageSource == name, HangLimit);
        }
    }

    static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format)
    {
        using var data = bitmap.Encode(format, 90);
        return data?.ToArray() ?? ImageFiles.Png(bitmap); // a Skia build without that encoder: fuzz PNG again
    }

    static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    // ---- the safetensors reader ----

    static void SafeTensors(Scratch s, int seed)
    {
        string valid = s.Path("valid.safetensors");
        SafeTensorsFile.Save(valid, new Dictionary<string, Tensor>
        {
            ["a.weight"] = randn(3, 4), ["b.bias"] = KeptScalars.Arange(5, ScalarType.Int64), ["c.half"] = ones(2, 2, dtype: ScalarType.Float16),
            ["d.flag"] = tensor(true), ["e.empty"] = zeros(0, 3),
        }, new Dictionary<string, string> { ["format"] = "pt" });
        byte[] validBytes = File.ReadAllBytes(valid);
        var random = new Random(seed);
        string path = s.Path("fuzz.safetensors");
        for (int i = 0; i < Iterations; i++)
        {
            byte[] input = (i % 5) switch
            {
                0 => RandomBytes(random, random.Next(64)),
                1 => Mutate(random, validBytes),
                2 => MutateHeader(random, validBytes),
                _ => Hostile(random),
            };
            File.WriteAllBytes(path, input);
            Check(seed, i, input, () =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                using (var file = SafeTensorsFile.Open(path))
                    foreach (string key in file.Keys)
                    {
                        using var t = file.Load(key);
                        // A tensor's bytes come from the file, so it can never be larger than the file.
                        Assert.True(t.NumberOfElements * t.ElementSize <= input.Length, $"tensor '{key}' is larger than the {input.Length}-byte file");
                    }
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                Assert.True(allocated < 16L * input.Length + (4 << 20), $"reading a {input.Length}-byte file allocated {allocated} bytes");
            }, e => e is SafeTensorsException x && x.Message.Contains(path, StringComparison.Ordinal), HangLimit);
        }
    }

    /// <summary>Mutates only the JSON header of a valid file, keeping its length field consistent, so the parser's checks are what is tested.</summary>
    static byte[] MutateHeader(Random random, byte[] valid)
    {
        int headerLength = (int)BitConverter.ToUInt64(valid, 0);
        byte[] header = Mutate(random, valid[8..(8 + headerLength)]);
        return [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. valid[(8 + headerLength)..]];
    }

    static readonly string[] DTypes = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "C64", "", "f32"];

    /// <summary>A well-formed file whose header lies: shapes, offsets and types drawn to break every check the reader makes.</summary>
    static byte[] Hostile(Random random)
    {
        int dataLength = random.Next(65);
        var json = new StringBuilder("{");
        int entries = random.Next(4);
        for (int k = 0; k < entries; k++)
        {
            if (k > 0) json.Append(',');
            json.Append($"\"t{random.Next(3)}\":");
            switch (random.Next(12))
            {
                case 0: json.Append(random.Next(2) == 0 ? "[1,2]" : "\"text\""); continue;
                case 1: json.Append("{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}"); continue;
                case 2: json.Append("{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}"); continue;
                case 3: json.Append("{\"dtype\":\"F32\",\"shape\":[1]}"); continue;
                // A shape whose element count overflows to 0, with the 0 bytes that would then match.
                case 4: json.Append("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}"); continue;
            }
            string[] dims = Enumerable.Range(0, random.Next(4)).Select(_ => random.Next(8) switch
            {
                0 => "-1",
                1 => "4294967296",
                2 => "9223372036854775807",
                3 => "0",
                4 => "99999999999999999999",
                _ => random.Next(6).ToString(System.Globalization.CultureInfo.InvariantCulture),
            }).ToArray();
            long begin = random.Next(3) switch { 0 => 0, 1 => random.Next(80) - 8, _ => long.MaxValue - random.Next(4) };
            long end = random.Next(3) switch { 0 => begin + 4 * random.Next(8), 1 => random.Next(80), _ => long.MinValue };
            string offsets = random.Next(8) == 0 ? $"[{begin}]" : $"[{begin},{end}]";
            json.Append($"{{\"dtype\":\"{DTypes[random.Next(DTypes.Length)]}\",\"shape\":[{string.Join(',', dims)}],\"data_offsets\":{offsets}}}");
        }
        if (random.Next(4) == 0) json.Append(entries > 0 ? "," : "").Append(random.Next(2) == 0 ? "\"__metadata__\":{\"format\":\"pt\",\"n\":1}" : "\"__metadata__\":[1]");
        json.Append('}');
        byte[] header = Encoding.UTF8.GetBytes(random.Next(10) == 0 ? new string('[', 100 + random.Next(2000)) : json.ToString());
        ulong declared = random.Next(12) switch { 0 => ulong.MaxValue - (ulong)random.Next(16), 1 => (ulong)header.Length + 1000, 2 => (ulong)Math.Max(0, header.Length - 3), _ => (ulong)header.Length };
        return [.. BitConverter.GetBytes(declared), .. header, .. RandomBytes(random, dataLength)];
    }
}
