using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.ML.Data;

namespace DiffII.MLNet.FineTuning.Tests;

/// <summary>Real images for the tests: items of the repository's Fashion-MNIST subset written as PNG files.</summary>
public static class TestImages
{
    public static readonly string[] ClassNames = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public static string SubsetFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "data", "fashion-mnist-subset");
            if (File.Exists(Path.Combine(candidate, "train-images-idx3-ubyte.gz"))) return candidate;
        }
        throw new DirectoryNotFoundException("data/fashion-mnist-subset was not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The split's images (28×28 grey) and labels.</summary>
    public static (byte[][] Images, byte[] Labels) Read(string split)
    {
        string folder = SubsetFolder();
        var images = Gunzip(Path.Combine(folder, $"{split}-images-idx3-ubyte.gz"));
        var labels = Gunzip(Path.Combine(folder, $"{split}-labels-idx1-ubyte.gz"));
        int count = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(4));
        int rows = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(8)), cols = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(12));
        var result = new byte[count][];
        for (int i = 0; i < count; i++) result[i] = images.AsSpan(16 + i * rows * cols, rows * cols).ToArray();
        return (result, labels.AsSpan(8, count).ToArray());
    }

    static byte[] Gunzip(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var memory = new MemoryStream();
        gz.CopyTo(memory);
        return memory.ToArray();
    }

    /// <summary>Writes a 28×28 grey image as a PNG, tinted by (r, g, b) multipliers so colour channels differ.</summary>
    public static string WritePng(byte[] grey, string path, double r = 1, double g = 1, double b = 1)
    {
        var bgra = new byte[28 * 28 * 4];
        for (int i = 0; i < grey.Length; i++)
        {
            bgra[i * 4] = (byte)Math.Min(255, grey[i] * b);
            bgra[i * 4 + 1] = (byte)Math.Min(255, grey[i] * g);
            bgra[i * 4 + 2] = (byte)Math.Min(255, grey[i] * r);
            bgra[i * 4 + 3] = 255;
        }
        using var image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, bgra);
        image.Save(path);
        return path;
    }

    /// <summary>A fresh folder under the temp directory, deleted by the caller.</summary>
    public static string TempFolder(string name)
    {
        var folder = Path.Combine(Path.GetTempPath(), "diffii-finetune-tests", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        return folder;
    }
}
