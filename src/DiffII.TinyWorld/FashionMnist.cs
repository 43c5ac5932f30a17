using System.Buffers.Binary;
using System.IO.Compression;

namespace DiffII.TinyWorld;

public enum FashionMnistSplit { Train, Test }

/// <summary>
/// Fashion-MNIST (Zalando, MIT licence): 28×28 grey items in 10 classes, read from the gzipped IDX files that
/// Debian's <c>dataset-fashion-mnist</c> package installs under <see cref="DebianFolder"/>.
/// </summary>
public sealed class FashionMnist
{
    public const string DebianFolder = "/usr/share/datasets/fashion-mnist";
    public const int Side = 28;

    /// <summary>Class names in label order (used only for reports and the classifier, never shown to the generator).</summary>
    public static readonly IReadOnlyList<string> ClassNames =
        ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"];

    FashionMnist(byte[] pixels, byte[] labels) { Pixels = pixels; Labels = labels; }

    /// <summary>A data set held in memory (tests).</summary>
    internal static FashionMnist FromArrays(byte[] pixels, byte[] labels) => new(pixels, labels);

    /// <summary>Row-major 28×28 bytes per item, items back to back; 0 is background, 255 full ink.</summary>
    public byte[] Pixels { get; }
    public byte[] Labels { get; }
    public int Count => Labels.Length;

    public ReadOnlySpan<byte> Item(int index) => Pixels.AsSpan(index * Side * Side, Side * Side);

    /// <summary>Reads one split. <paramref name="folder"/> defaults to the Debian package's folder.</summary>
    /// <exception cref="FileNotFoundException">The files are missing; the message says how to install them.</exception>
    public static FashionMnist Load(FashionMnistSplit split, string? folder = null)
    {
        folder ??= DebianFolder;
        string prefix = split == FashionMnistSplit.Train ? "train" : "t10k";
        string imagesPath = Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz");
        string labelsPath = Path.Combine(folder, $"{prefix}-labels-idx1-ubyte.gz");
        foreach (var path in new[] { imagesPath, labelsPath })
            if (!File.Exists(path))
                throw new FileNotFoundException(
                    $"Fashion-MNIST file not found: {path}. Install Debian's package with 'apt-get install dataset-fashion-mnist' " +
                    "or point to a folder holding the four *-ubyte.gz files.", path);

        byte[] images = ReadIdx(imagesPath, expectedMagic: 0x00000803, out int[] imageDims);
        byte[] labels = ReadIdx(labelsPath, expectedMagic: 0x00000801, out int[] labelDims);
        if (imageDims.Length != 3 || imageDims[1] != Side || imageDims[2] != Side)
            throw new InvalidDataException($"{imagesPath}: expected N×28×28 images, found {string.Join("×", imageDims)}.");
        if (labelDims[0] != imageDims[0])
            throw new InvalidDataException($"{labelsPath}: {labelDims[0]} labels for {imageDims[0]} images in {imagesPath}.");
        if (labels.Any(l => l >= ClassNames.Count))
            throw new InvalidDataException($"{labelsPath}: a label is outside 0..{ClassNames.Count - 1}.");
        return new FashionMnist(images, labels);
    }

    static byte[] ReadIdx(string path, int expectedMagic, out int[] dims)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var buffer = new MemoryStream();
        try { gz.CopyTo(buffer); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: not a readable gzip file ({e.Message}).", e); }
        var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        if (bytes.Length < 8) throw new InvalidDataException($"{path}: too short for an IDX header.");
        int magic = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (magic != expectedMagic) throw new InvalidDataException($"{path}: IDX magic 0x{magic:X8}, expected 0x{expectedMagic:X8}.");
        int rank = magic & 0xff;
        dims = new int[rank];
        for (int i = 0; i < rank; i++) dims[i] = BinaryPrimitives.ReadInt32BigEndian(bytes[(4 + 4 * i)..]);
        int headerLength = 4 + 4 * rank;
        long count = dims.Aggregate(1L, (a, b) => a * b);
        if (bytes.Length - headerLength != count)
            throw new InvalidDataException($"{path}: header promises {count} bytes of data, the file holds {bytes.Length - headerLength}.");
        return bytes[headerLength..].ToArray();
    }
}
