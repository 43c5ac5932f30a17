using DiffII.Imaging;
using DiffII.MLNet;
using DiffII.MLNet.Data;
using DiffII.Reliability.Tests.Fixtures;
using DiffII.Reliability.Tests.Matrix;
using Microsoft.ML;
using SkiaSharp;
using static TorchSharp.torch;

namespace DiffII.Reliability.Tests.Rows;

/// <summary>Images: broken files are refused naming the file before any work; every real-world kind decodes to the right RGB pixels.</summary>
public static class ImageRows
{
    /// <summary>A broken file: what it is, its name in the dataset, its bytes, and the words the error must contain.</summary>
    sealed record BrokenImage(string Key, string What, string FileName, Func<byte[]> Bytes, string Reason);

    static byte[] JpegPhoto() { using var b = ImageFiles.Gradient(64, 64); return ImageFiles.Jpeg(b); }
    static byte[] PngPhoto() { using var b = ImageFiles.Gradient(64, 64); return ImageFiles.Png(b); }

    static readonly BrokenImage[] Broken =
    [
        new("truncated-jpeg", "a JPEG cut short (a half-copied file)", "cut.jpg", () => JpegPhoto()[..(JpegPhoto().Length / 2)], "truncated"),
        new("truncated-png", "a PNG cut short", "cut.png", () => PngPhoto()[..(PngPhoto().Length * 2 / 3)], "truncated"),
        new("corrupt-png", "a PNG whose compressed pixel data is damaged (framing and CRCs intact)", "damaged.png", () => ImageFiles.CorruptPngData(PngPhoto()), "damaged"),
        new("not-an-image", "a text file named .jpg", "notes.jpg", () => "these are my field notes, not a photo"u8.ToArray(), "not a recognised image"),
        new("zero-bytes", "a zero-byte file", "empty.png", () => [], "empty (0 bytes)"),
        new("bomb", "a PNG whose header claims 100 000 × 100 000 pixels (a decompression bomb)", "bomb.png",
            () => ImageFiles.PngFile(BombHeader(), new byte[101]), "too large"),
    ];

    static byte[] BombHeader()
    {
        var header = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, 100_000);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), 100_000);
        header[8] = 8;
        header[9] = 2;
        return header;
    }

    const string RefusedThen = "refused before any work, with an error naming the file and what is wrong; nothing is written";

    // One README line for all broken files; each is still its own row (and test case) per layer.
    const string BrokenWhen = "a broken image file: a JPEG or PNG cut short, damaged PNG pixel data (CRCs intact), a text file named .jpg, " +
                              "a zero-byte file, a decompression bomb (a PNG header claiming 100 000 × 100 000 pixels)";

    public static IEnumerable<MatrixRow> All =>
    [
        .. Broken.Select(b => new MatrixRow($"image.{b.Key}.library", Area.Images, Layer.Library, BrokenWhen, RefusedThen, s => Library(s, b))),
        .. Broken.Select(b => new MatrixRow($"image.{b.Key}.mlnet", Area.Images, Layer.MLNet, BrokenWhen, RefusedThen, s => MLNet(s, b))),
        .. Broken.Select(b => new MatrixRow($"image.{b.Key}.cli", Area.Images, Layer.Cli, BrokenWhen, RefusedThen, s => Cli(s, b))),

        MatrixRow.Sync("image.grey", Area.Images, Layer.Library, "a greyscale PNG", "used as RGB with three equal channels", _ => Grey()),
        MatrixRow.Sync("image.rgba", Area.Images, Layer.Library, "an RGBA PNG with transparency", "composited over white (transparent → white, half-transparent red → pink)", _ => Rgba()),
        MatrixRow.Sync("image.16-bit", Area.Images, Layer.Library, "a 16-bit-per-channel PNG", "reduced to 8 bits per channel with the right values", _ => SixteenBit()),
        MatrixRow.Sync("image.cmyk", Area.Images, Layer.Library, "a CMYK JPEG (Adobe APP14, as Photoshop writes)", "converted to the right RGB colours", _ => Cmyk()),
        MatrixRow.Sync("image.exif", Area.Images, Layer.Library, "a JPEG with EXIF orientation 6 (camera held upright)", "rotated into display orientation before cropping", _ => Exif()),
        MatrixRow.Sync("image.1x1", Area.Images, Layer.Library, "a 1×1 image", "scaled up to the model's resolution (one colour)", _ => OnePixel()),
        MatrixRow.Sync("image.huge-jpeg", Area.Images, Layer.Library, "an 8000 × 8000 JPEG", "decoded at a reduced scale (about 1000 × 1000), then resized; no full-size buffer", _ => HugeJpeg()),
        MatrixRow.Sync("image.huge-png", Area.Images, Layer.Library, "an 8000 × 8000 PNG", "decoded once natively and resized; no managed copy of its 64 M pixels", _ => HugePng()),
        new("image.every-kind.library", Area.Images, Layer.Library, MixedWhen, MixedThen, MixedLibrary),
        new("image.every-kind.mlnet", Area.Images, Layer.MLNet, MixedWhen, MixedThen, MixedMLNet),
        new("image.every-kind.cli", Area.Images, Layer.Cli, MixedWhen, MixedThen, MixedCli),
    ];

    // ---- broken files, through each layer ----

    static void AssertSays(BrokenImage broken, string message) =>
        Assert.True(message.Contains(broken.Reason, StringComparison.Ordinal), $"{broken.What}: the error \"{message}\" does not say \"{broken.Reason}\"");

    static Task Library(Scratch s, BrokenImage broken)
    {
        using var sd = Tiny.Load();
        var images = Tiny.Images(("a", 2), ("b", 2));
        byte[] bytes = broken.Bytes();
        images.Add(new LabeledImage("b/" + broken.FileName, "b", () => bytes));
        string work = s.Path("work");
        // Real-Guidance learns nothing, so only an up-front check can find the file before images are generated.
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(Augmentation.Strategy.RealGuidance), work);
        var e = Assert.Throws<ImageDecodeException>(() => augmenter.Run(images));
        Assert.Contains("b/" + broken.FileName, e.Message);
        AssertSays(broken, e.Message);
        Assert.Equal(0, Outputs.ManifestLines(work));
        Assert.Empty(Outputs.Pngs(work));
        return Task.CompletedTask;
    }

    static Task MLNet(Scratch s, BrokenImage broken)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string path = Path.Combine(images, "b", broken.FileName);
        File.WriteAllBytes(path, broken.Bytes());
        var ml = new MLContext(seed: 1);
        var data = ImageFolderDataset.Load(ml, images);
        string cache = s.Path("cache");
        var e = Assert.Throws<ImageDecodeException>(() => new DiffIIAugmentEstimator(Tiny.MLNet(cache)).Fit(data));
        Assert.Contains(path, e.Message);
        Assert.Contains("'ImagePath'", e.Message);
        AssertSays(broken, e.Message);
        Assert.Equal(0, Outputs.ManifestLines(cache));
        Assert.False(Directory.Exists(Path.Combine(cache, "concepts")));
        return Task.CompletedTask;
    }

    static async Task Cli(Scratch s, BrokenImage broken)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string path = Path.Combine(images, "b", broken.FileName);
        File.WriteAllBytes(path, broken.Bytes());
        string work = s.Path("work");
        var line = (await CliRunner.Run(["augment", .. Tiny.CliArgs(work, images)])).OneErrorLine();
        Assert.Contains(path, line);
        AssertSays(broken, line);
        Assert.Equal(0, Outputs.ManifestLines(work));
        Assert.False(Directory.Exists(Path.Combine(work, "concepts")));
    }

    // ---- real-world kinds, decoded by the library ----

    static float[] Rgb(Tensor image, int y, int x) =>
        [(image[0, y, x].item<float>() + 1) * 127.5f, (image[1, y, x].item<float>() + 1) * 127.5f, (image[2, y, x].item<float>() + 1) * 127.5f];

    static void AssertColour(Tensor image, int y, int x, int r, int g, int b, float tolerance = 2)
    {
        var got = Rgb(image, y, x);
        Assert.True(Math.Abs(got[0] - r) <= tolerance && Math.Abs(got[1] - g) <= tolerance && Math.Abs(got[2] - b) <= tolerance,
            $"pixel ({x}, {y}) is ({got[0]:0}, {got[1]:0}, {got[2]:0}); expected ({r}, {g}, {b})");
    }

    static Tensor Decode(byte[] bytes, string name, int resolution = 16)
    {
        using var bitmap = ImageCodec.Decode(bytes, name, resolution);
        return ImageCodec.ToTensor(bitmap, resolution);
    }

    static void Grey()
    {
        var t = Decode(ImageFiles.GreyPng(16, 16, 100), "grey.png");
        Assert.True(t[0].allclose(t[1]) && t[1].allclose(t[2]), "the three channels differ");
        AssertColour(t, 5, 5, 100, 100, 100, 0.5f);
    }

    static void Rgba()
    {
        var t = Decode(ImageFiles.RgbaPng(16, 16), "alpha.png");
        AssertColour(t, 8, 2, 255, 255, 255, 0.5f);
        AssertColour(t, 8, 13, 255, 127, 127, 1);
    }

    static void SixteenBit()
    {
        var t = Decode(ImageFiles.Png16(16, 16, 0xFFFF, 0x8080, 0x0000), "deep.png");
        AssertColour(t, 3, 3, 255, 128, 0, 1);
    }

    static void Cmyk()
    {
        // Adobe CMYK JPEGs store inverted ink values: (255, 0, 0, 255) is no cyan ink, full magenta and yellow, no black → red.
        byte[] jpeg = ImageFiles.FlatBlockJpeg(16, 8, 4, (bx, _) => bx == 0 ? [255, 0, 0, 255] : [0, 255, 255, 255]);
        using var bitmap = ImageCodec.Decode(jpeg, "print.jpg");
        Assert.Equal((16, 8), (bitmap.Width, bitmap.Height));
        var left = bitmap.GetPixel(3, 4);
        var right = bitmap.GetPixel(12, 4);
        Assert.True(left.Red > 240 && left.Green < 15 && left.Blue < 15, $"left block is {left}; expected red");
        Assert.True(right.Red < 15 && right.Green > 240 && right.Blue > 240, $"right block is {right}; expected cyan");
    }

    static void Exif()
    {
        // Stored 32 wide × 16 high; orientation 6 means "rotate 90° clockwise to display", so it shows 16 × 32 and the
        // stored bottom-left corner (red 0, green 255) becomes the displayed top-left.
        using var stored = ImageFiles.Gradient(32, 16);
        byte[] jpeg = ImageFiles.WithExifOrientation(ImageFiles.Jpeg(stored, 95), 6);
        using var bitmap = ImageCodec.Decode(jpeg, "upright.jpg");
        Assert.Equal((16, 32), (bitmap.Width, bitmap.Height));
        var topLeft = bitmap.GetPixel(0, 0);
        Assert.True(topLeft.Red < 40 && topLeft.Green > 215, $"displayed top-left is {topLeft}; expected the stored bottom-left (0, 255, 60)");
    }

    static void OnePixel()
    {
        using var pixel = ImageFiles.Solid(1, 1, SKColors.Orange);
        var t = Decode(ImageFiles.Png(pixel), "dot.png");
        Assert.Equal([3L, 16, 16], t.shape);
        AssertColour(t, 0, 0, 255, 165, 0, 0.5f);
        AssertColour(t, 15, 15, 255, 165, 0, 0.5f);
    }

    static void HugeJpeg()
    {
        byte[] jpeg;
        using (var big = ImageFiles.Solid(8000, 8000, new SKColor(20, 120, 220))) jpeg = ImageFiles.Jpeg(big, 80);
        long before = GC.GetAllocatedBytesForCurrentThread();
        using (var bitmap = ImageCodec.Decode(jpeg, "huge.jpg", minSide: 512))
        {
            Assert.InRange(Math.Min(bitmap.Width, bitmap.Height), 512, 2000);
            var t = ImageCodec.ToTensor(bitmap, 512);
            AssertColour(t, 100, 100, 20, 120, 220, 3);
        }
        long managed = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(managed < 64L << 20, $"decoding allocated {managed >> 20} MB of managed memory");
    }

    static void HugePng()
    {
        byte[] png;
        using (var big = ImageFiles.Solid(8000, 8000, new SKColor(200, 40, 90))) png = ImageFiles.Png(big);
        long before = GC.GetAllocatedBytesForCurrentThread();
        using (var bitmap = ImageCodec.Decode(png, "huge.png", minSide: 512))
        {
            var t = ImageCodec.ToTensor(bitmap, 512);
            AssertColour(t, 300, 20, 200, 40, 90, 1);
        }
        long managed = GC.GetAllocatedBytesForCurrentThread() - before;
        // The 8000 × 8000 RGBA pixels are 256 MB; a managed copy of them (SKBitmap.Pixels) would show here.
        Assert.True(managed < 64L << 20, $"decoding allocated {managed >> 20} MB of managed memory");
    }

    // ---- every kind in one dataset, through each layer ----

    const string MixedWhen = "a dataset mixing greyscale, RGBA, 16-bit, CMYK, EXIF-rotated, WebP, 1×1 and odd-sized images";
    const string MixedThen = "every image is used (each class learned, inverted and augmented)";

    /// <summary>Eight files of eight kinds and sizes in two classes.</summary>
    static (string Name, string Label, byte[] Bytes)[] MixedFiles()
    {
        using var wide = ImageFiles.Gradient(40, 16);
        using var tall = ImageFiles.Gradient(12, 30);
        using var dot = ImageFiles.Solid(1, 1, SKColors.Teal);
        using var webp = ImageFiles.Gradient(20, 20);
        return
        [
            ("grey.png", "a", ImageFiles.GreyPng(16, 16, 90)),
            ("alpha.png", "a", ImageFiles.RgbaPng(20, 12)),
            ("deep.png", "a", ImageFiles.Png16(16, 16, 0x1234, 0xABCD, 0x7777)),
            ("print.jpg", "a", ImageFiles.FlatBlockJpeg(16, 16, 4, (bx, by) => [(byte)(200 * bx), 60, (byte)(250 * by), 230])),
            ("upright.jpg", "b", ImageFiles.WithExifOrientation(ImageFiles.Jpeg(tall), 6)),
            ("dot.png", "b", ImageFiles.Png(dot)),
            ("wide.png", "b", ImageFiles.Png(wide)),
            ("photo.webp", "b", ImageFiles.Webp(webp)),
        ];
    }

    static Task MixedLibrary(Scratch s)
    {
        using var sd = Tiny.Load();
        var images = MixedFiles().Select(f => new LabeledImage($"{f.Label}/{f.Name}", f.Label, () => f.Bytes)).ToList();
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(expansion: 1), s.Path("work"));
        var synthetic = augmenter.Run(images);
        Assert.Equal(8, augmenter.Pool!.Count);
        Assert.Equal(8, synthetic.Count);
        Assert.Empty(augmenter.Failures);
        return Task.CompletedTask;
    }

    static Task MixedMLNet(Scratch s)
    {
        string root = s.Path("images");
        foreach (var (name, label, bytes) in MixedFiles())
        {
            Directory.CreateDirectory(Path.Combine(root, label));
            File.WriteAllBytes(Path.Combine(root, label, name), bytes);
        }
        var ml = new MLContext(seed: 1);
        var fitted = new DiffIIAugmentEstimator(Tiny.MLNet(s.Path("cache")) with { ExpansionRate = 1 }).Fit(ImageFolderDataset.Load(ml, root));
        Assert.Equal(8, fitted.SyntheticRows.Count);
        Assert.Empty(fitted.Failures);
        return Task.CompletedTask;
    }

    static async Task MixedCli(Scratch s)
    {
        string root = s.Path("images");
        foreach (var (name, label, bytes) in MixedFiles())
        {
            Directory.CreateDirectory(Path.Combine(root, label));
            File.WriteAllBytes(Path.Combine(root, label, name), bytes);
        }
        string work = s.Path("work");
        var run = await CliRunner.Run(["augment", .. Tiny.CliArgs(work, root, "--expansion", "1")]);
        run.AssertOk();
        Assert.Contains("8 images in 2 classes", run.Stderr);
        Assert.Equal(8, Outputs.ManifestLines(work));
    }
}
