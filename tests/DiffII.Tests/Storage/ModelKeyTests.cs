using DiffII.Storage;

namespace DiffII.Tests.Storage;

/// <summary>A work folder's model key names the model by its content, not by where it lies.</summary>
public sealed class ModelKeyTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-modelkey-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    string Model(string name, byte[] unetWeights)
    {
        string folder = Path.Combine(_root, name);
        Directory.CreateDirectory(Path.Combine(folder, "unet"));
        Directory.CreateDirectory(Path.Combine(folder, "vae"));
        File.WriteAllBytes(Path.Combine(folder, "unet", "diffusion_pytorch_model.safetensors"), unetWeights);
        File.WriteAllBytes(Path.Combine(folder, "vae", "diffusion_pytorch_model.safetensors"), [1, 2, 3]);
        File.WriteAllText(Path.Combine(folder, "model_index.json"), "{}");
        return folder;
    }

    [Fact]
    public void TheSameModelElsewhere_HasTheSameKey_AndChangedWeightsOrConfigDoNot()
    {
        var weights = new byte[3 << 20];
        new Random(1).NextBytes(weights);
        string key = WorkFolder.ModelKey(Model("a", weights), "{\"sample_size\": 8}");

        Assert.Equal(key, WorkFolder.ModelKey(Model("moved/elsewhere", weights), "{\"sample_size\": 8}"));
        Assert.NotEqual(key, WorkFolder.ModelKey(Model("a2", weights), "{\"sample_size\": 16}"));
        foreach (int at in new[] { 0, weights.Length - 1 })   // the first and the last MiB are read
        {
            var retrained = (byte[])weights.Clone();
            retrained[at] ^= 0xFF;
            Assert.NotEqual(key, WorkFolder.ModelKey(Model($"retrained-{at}", retrained), "{\"sample_size\": 8}"));
        }
        Assert.NotEqual(key, WorkFolder.ModelKey(Model("longer", [.. weights, 0]), "{\"sample_size\": 8}"));

        // A single-file checkpoint: its name and content, wherever it is.
        string file = Path.Combine(_root, "a", "unet", "diffusion_pytorch_model.safetensors");
        string copy = Path.Combine(_root, "copy.safetensors");
        File.Copy(file, copy);
        Assert.NotEqual(WorkFolder.ModelKey(file, "{}"), WorkFolder.ModelKey(copy, "{}"));   // another file name
        Directory.CreateDirectory(Path.Combine(_root, "b"));
        File.Copy(file, Path.Combine(_root, "b", "diffusion_pytorch_model.safetensors"));
        Assert.Equal(WorkFolder.ModelKey(file, "{}"), WorkFolder.ModelKey(Path.Combine(_root, "b", "diffusion_pytorch_model.safetensors"), "{}"));
    }
}
