using System.Buffers.Binary;
using System.IO.Compression;

namespace DiffII.TinyWorld;

/// <summary>
/// A small, seeded, class-balanced slice of Fashion-MNIST in the same gzipped IDX format, shipped in the repository
/// (<c>data/fashion-mnist-subset</c>) so the demo runs without the Debian package.
/// </summary>
public static class FashionMnistSubset
{
    /// <summary>The folder in the repository that holds the shipped subset.</summary>
    public const string RepositoryFolder = "data/fashion-mnist-subset";
    /// <summary>The recipe of the shipped subset: items per class in each split, and the seed.</summary>
    public const int TrainPerClass = 10, TestPerClass = 50, Seed = 2026;

    /// <summary>
    /// Writes <paramref name="perClassTrain"/> training items and <paramref name="perClassTest"/> test items of every
    /// class, drawn with <paramref name="seed"/>, as train-/t10k- IDX files into <paramref name="folder"/>.
    /// </summary>
    public static void Write(FashionMnist train, FashionMnist test, string folder, int perClassTrain, int perClassTest, int seed)
    {
        Directory.CreateDirectory(folder);
        WriteSplit(train, Pick(train, perClassTrain, seed), Path.Combine(folder, "train"));
        WriteSplit(test, Pick(test, perClassTest, seed + 1), Path.Combine(folder, "t10k"));
    }

    /// <summary>Finds the shipped subset by walking up from <paramref name="start"/> (default: the app's folder).</summary>
    public static string? Find(string? start = null)
    {
        for (var dir = new DirectoryInfo(start ?? AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, RepositoryFolder);
            if (File.Exists(Path.Combine(candidate, "train-images-idx3-ubyte.gz"))) return candidate;
        }
        return null;
    }

    static List<int> Pick(FashionMnist set, int perClass, int seed)
    {
        var random = new Random(seed);
        var picked = new List<int>();
        for (int label = 0; label < FashionMnist.ClassNames.Count; label++)
        {
            var indices = Enumerable.Range(0, set.Count).Where(i => set.Labels[i] == label).ToList();
            if (indices.Count < perClass) throw new ArgumentException($"Class {FashionMnist.ClassNames[label]} has {indices.Count} items; {perClass} were asked for.");
            // Partial Fisher–Yates: the first perClass positions become a uniform sample.
            for (int k = 0; k < perClass; k++)
            {
                int j = k + random.Next(indices.Count - k);
                (indices[k], indices[j]) = (indices[j], indices[k]);
            }
            picked.AddRange(indices.Take(perClass).Order());
        }
        return picked;
    }

    static void WriteSplit(FashionMnist set, IReadOnlyList<int> items, string prefix)
    {
        var pixels = new byte[items.Count * FashionMnist.Side * FashionMnist.Side];
        var labels = new byte[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            set.Item(items[i]).CopyTo(pixels.AsSpan(i * FashionMnist.Side * FashionMnist.Side));
            labels[i] = set.Labels[items[i]];
        }
        WriteIdx(prefix + "-images-idx3-ubyte.gz", 0x803, [items.Count, FashionMnist.Side, FashionMnist.Side], pixels);
        WriteIdx(prefix + "-labels-idx1-ubyte.gz", 0x801, [items.Count], labels);
    }

    /// <summary>Writes a gzipped IDX file (Fashion-MNIST's format: big-endian magic, dimensions, raw bytes).</summary>
    internal static void WriteIdx(string path, int magic, int[] dims, byte[] data)
    {
        using var stream = File.Create(path);
        using var gz = new GZipStream(stream, CompressionLevel.SmallestSize);
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, magic);
        gz.Write(word);
        foreach (var d in dims) { BinaryPrimitives.WriteInt32BigEndian(word, d); gz.Write(word); }
        gz.Write(data);
    }
}
