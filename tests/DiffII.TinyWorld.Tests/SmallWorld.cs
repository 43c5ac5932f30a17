namespace DiffII.TinyWorld.Tests;

/// <summary>
/// A stand-in Fashion-MNIST: class c is a filled rectangle 6 + 2c wide and 24 − 2c high (plus a pixel of seeded
/// jitter), so its aspect ratio — which the scenes' scaling keeps — tells the class. With two far-apart classes
/// (0, a tall bar, and 9, a flat one) a small network must learn them in a few dozen steps.
/// </summary>
static class SmallWorld
{
    static (byte[] Pixels, byte[] Labels) Make(int perClass, int seed, IReadOnlyList<int>? classes)
    {
        var random = new Random(seed);
        classes ??= Enumerable.Range(0, FashionMnist.ClassNames.Count).ToArray();
        int count = perClass * classes.Count;
        var pixels = new byte[count * 784];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            int label = classes[i % classes.Count];
            labels[i] = (byte)label;
            int w = 6 + 2 * label + random.Next(0, 2), h = 24 - 2 * label + random.Next(0, 2);
            int x0 = (28 - w) / 2, y0 = (28 - h) / 2;
            for (int y = y0; y < y0 + h; y++) for (int x = x0; x < x0 + w; x++) pixels[i * 784 + y * 28 + x] = (byte)random.Next(180, 256);
        }
        return (pixels, labels);
    }

    public static FashionMnist InMemory(int perClass, int seed = 1)
    {
        var (pixels, labels) = Make(perClass, seed, null);
        return FashionMnist.FromArrays(pixels, labels);
    }

    /// <summary>Writes both splits as gzipped IDX files into <paramref name="folder"/>.</summary>
    public static string WriteFolder(string folder, int perClass, IReadOnlyList<int>? classes = null)
    {
        Directory.CreateDirectory(folder);
        foreach (var (prefix, seed) in new[] { ("train", 1), ("t10k", 2) })
        {
            var (pixels, labels) = Make(perClass, seed, classes);
            FashionMnistSubset.WriteIdx(Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz"), 0x803, [labels.Length, 28, 28], pixels);
            FashionMnistSubset.WriteIdx(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte.gz"), 0x801, [labels.Length], labels);
        }
        return folder;
    }
}
