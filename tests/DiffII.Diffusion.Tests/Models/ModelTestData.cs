using DiffII.Diffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Models;

/// <summary>Reference key lists and golden tensors for the model tests.</summary>
static class ModelTestData
{
    public static string Keys(string file) => SharedData.Path("data", "sd-keys", file);
    public static string SdConfig(params string[] parts) => SharedData.Path(["data", "sd-configs", .. parts]);

    /// <summary>Reads a "key [d0,d1,...] dtype" list.</summary>
    public static Dictionary<string, long[]> ReadKeyList(string path)
    {
        var result = new Dictionary<string, long[]>();
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            var parts = line.Split(' ', 3);
            var shapeText = parts[1].Trim('[', ']');
            long[] shape = shapeText.Length == 0 ? [] : shapeText.Split(',').Select(long.Parse).ToArray();
            result.Add(parts[0], shape);
        }
        return result;
    }

    public static Dictionary<string, long[]> Shapes(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);

    /// <summary>Asserts equal key sets and shapes; the failure lists the first differences of each kind.</summary>
    public static void AssertSameKeys(Dictionary<string, long[]> expected, Dictionary<string, long[]> got, string what)
    {
        var missing = expected.Keys.Where(k => !got.ContainsKey(k)).ToList();
        var extra = got.Keys.Where(k => !expected.ContainsKey(k)).ToList();
        var wrongShape = expected.Keys.Where(k => got.TryGetValue(k, out var s) && !s.SequenceEqual(expected[k]))
            .Select(k => $"{k}: expected [{string.Join(",", expected[k])}], got [{string.Join(",", got[k])}]").ToList();
        if (missing.Count + extra.Count + wrongShape.Count == 0) return;
        Assert.Fail($"{what}: {missing.Count} missing, {extra.Count} unexpected, {wrongShape.Count} wrong shapes.\n" +
                    $"missing: {string.Join("; ", missing.Take(8))}\nunexpected: {string.Join("; ", extra.Take(8))}\nshapes: {string.Join("; ", wrongShape.Take(8))}");
    }

    public static Tensor Golden(string key)
    {
        using var file = SafeTensorsFile.Open(SharedData.TinyA("golden.safetensors"));
        return file.Load(key);
    }
}
