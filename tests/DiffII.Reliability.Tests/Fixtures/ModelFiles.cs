using DiffII.Diffusion.IO;
using static TorchSharp.torch;

namespace DiffII.Reliability.Tests.Fixtures;

/// <summary>Writable copies of the tiny model, to damage in the ways real downloads and conversions go wrong.</summary>
public static class ModelFiles
{
    static readonly string[] Parts = ["model_index.json", "scheduler", "text_encoder", "tokenizer", "unet", "vae"];

    /// <summary>Copies sd-tiny-a's pipeline files (not its goldens) to <paramref name="folder"/>.</summary>
    public static string Copy(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (string part in Parts)
        {
            string source = Tiny.ModelPath + "/" + part;
            if (File.Exists(source)) { File.Copy(source, Path.Combine(folder, part)); continue; }
            Directory.CreateDirectory(Path.Combine(folder, part));
            foreach (string file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(folder, part, Path.GetFileName(file)));
        }
        return folder;
    }

    /// <summary>Rewrites one safetensors file of a model copy through <paramref name="change"/> (which may replace, add or remove tensors).</summary>
    public static void Rewrite(string path, Action<Dictionary<string, Tensor>> change)
    {
        var tensors = SafeTensorsFile.LoadAll(path);
        change(tensors);
        File.Delete(path);
        SafeTensorsFile.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    public const string TokenEmbeddingKey = "text_model.embeddings.token_embedding.weight";
}
