using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.TinyWorld;

/// <summary>One rendered tiny-world picture with what it shows.</summary>
public sealed record TinyWorldSample(int ItemIndex, int Label, Scene Scene, float[] Rgb);

/// <summary>
/// Endless, reproducible batches of tiny-world pictures: batch k of a stream depends only on the seed, the stream
/// name and k, so training resumed at step k sees exactly the batches an uninterrupted run would have seen.
/// An optional item pool restricts the draws to those items (the judge never sees the experiment's few-shot items).
/// </summary>
public sealed class TinyWorldData(FashionMnist items, SceneDistribution scenes, long seed, IReadOnlyList<int>? itemPool = null)
{
    public FashionMnist Items => items;

    /// <summary>Renders one picture of item <paramref name="itemIndex"/> in a scene drawn from <paramref name="random"/>.</summary>
    public TinyWorldSample Render(int itemIndex, Random random)
    {
        var scene = scenes.Sample(random);
        return new TinyWorldSample(itemIndex, items.Labels[itemIndex], scene, SceneRenderer.Render(items.Item(itemIndex), scene));
    }

    /// <summary>Batch <paramref name="index"/> of the stream <paramref name="stream"/>: random items in random scenes.</summary>
    public IReadOnlyList<TinyWorldSample> Batch(string stream, long index, int size)
    {
        var random = new Random(Seed(stream, index));
        var batch = new TinyWorldSample[size];
        for (int i = 0; i < size; i++)
            batch[i] = Render(itemPool is null ? random.Next(items.Count) : itemPool[random.Next(itemPool.Count)], random);
        return batch;
    }

    /// <summary>Stacks samples into [B, 3, 32, 32] in [−1, 1] (Stable Diffusion's image range).</summary>
    public static Tensor ToTensor(IReadOnlyList<TinyWorldSample> samples, Device? device = null)
    {
        int side = SceneRenderer.Size;
        var values = new float[samples.Count * 3 * side * side];
        for (int i = 0; i < samples.Count; i++)
            for (int j = 0; j < samples[i].Rgb.Length; j++)
                values[i * samples[i].Rgb.Length + j] = samples[i].Rgb[j] * 2f - 1f;
        var t = tensor(values, [samples.Count, 3, side, side]);
        return device is null || device.type == DeviceType.CPU ? t : t.to(device);
    }

    int Seed(string stream, long index)
    {
        ulong h = 1469598103934665603UL ^ unchecked((ulong)seed);
        foreach (char c in stream) h = (h ^ c) * 1099511628211UL;
        h = (h ^ unchecked((ulong)index)) * 0x9E3779B97F4A7C15UL;
        h ^= h >> 29;
        return (int)(h & 0x7fffffff);
    }
}
