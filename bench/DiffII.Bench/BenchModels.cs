using DiffII.Diffusion;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Schedulers;
using DiffII.Diffusion.Text;
using DiffII.TinyWorld;
using DiffII.TinyWorld.Pretraining;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>
/// The architectures the benchmark measures, with random weights: speed does not depend on the weights' values,
/// and no checkpoint can be downloaded here. SD 1.5 and 2.1 come from their diffusers configs (../shared), the
/// tiny model from <see cref="TinyModelConfigs"/>.
/// </summary>
public static class BenchModels
{
    public static readonly string[] Names = ["sd15", "sd21", "tiny"];

    /// <summary>The pixel size a model is measured at when --resolution is not given.</summary>
    public static int[] DefaultResolutions(string model) => model switch
    {
        "tiny" => [TinyModelConfigs.ImageSize],
        "sd21" => [512],
        _ => [512, 256],
    };

    /// <summary>Builds a model in its architecture with seeded random weights, on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    /// <param name="sharedFolder">The shared/ data folder (configs and CLIP tokenizer files).</param>
    /// <param name="scratch">A folder for the tiny model's generated tokenizer files.</param>
    public static StableDiffusion Build(string model, string sharedFolder, string scratch, Device device, ScalarType dtype, long seed = 1)
    {
        manual_seed(seed);
        return model switch
        {
            "sd15" => FromConfigs("sd15", Path.Combine(sharedFolder, "data", "sd-configs", "sd15"),
                () => ClipTokenizer.FromFiles(SharedFile(sharedFolder, "data", "clip-tokenizer", "vocab.json"), SharedFile(sharedFolder, "data", "clip-tokenizer", "merges.txt")),
                device, dtype),
            "sd21" => FromConfigs("sd21", Path.Combine(sharedFolder, "data", "sd-configs", "sd21"),
                () => ClipTokenizer.FromFolder(Path.Combine(sharedFolder, "data", "sd-configs", "sd21", "tokenizer")), device, dtype),
            "tiny" => Tiny(scratch, device, dtype),
            _ => throw new ArgumentException($"Unknown model '{model}'; use one of {string.Join(", ", Names)}."),
        };
    }

    static string SharedFile(string shared, params string[] parts)
    {
        string path = Path.Combine([shared, .. parts]);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing; --shared must point at the shared/ data folder.", path);
        return path;
    }

    static StableDiffusion FromConfigs(string name, string folder, Func<ClipTokenizer> tokenizer, Device device, ScalarType dtype)
    {
        string Config(string component, string file = "config.json") => SharedFile(folder, component, file);
        var unetConfig = UNet2DConditionConfig.FromFile(Config("unet"));
        var vaeConfig = AutoencoderKLConfig.FromFile(Config("vae"));
        var textConfig = ClipTextConfig.FromFile(Config("text_encoder"));
        var scheduler = DDIMSchedulerConfig.FromFile(Config("scheduler", "scheduler_config.json"));
        return Assemble($"{name} architecture, random weights", tokenizer(), new ClipTextModel(textConfig), new UNet2DConditionModel(unetConfig),
            new AutoencoderKL(vaeConfig), scheduler, device, dtype);
    }

    static StableDiffusion Tiny(string scratch, Device device, ScalarType dtype)
    {
        string folder = Path.Combine(scratch, "tiny-tokenizer");
        var (vocab, merges) = BpeVocabularyBuilder.Build(Scene.Vocabulary());
        BpeVocabularyBuilder.Write(folder, vocab, merges);
        var tokenizer = ClipTokenizer.FromFiles(Path.Combine(folder, "vocab.json"), Path.Combine(folder, "merges.txt"));
        return Assemble("tiny architecture, random weights", tokenizer, new ClipTextModel(TinyPretrainer.TextConfig(tokenizer)),
            new UNet2DConditionModel(TinyModelConfigs.UNet()), new AutoencoderKL(TinyModelConfigs.Vae()),
            DDIMSchedulerConfig.FromJson(TinyModelConfigs.SchedulerJson), device, dtype);
    }

    static StableDiffusion Assemble(string source, ClipTokenizer tokenizer, ClipTextModel text, UNet2DConditionModel unet, AutoencoderKL vae,
        DDIMSchedulerConfig scheduler, Device device, ScalarType dtype)
    {
        foreach (var module in new nn.Module[] { text, unet, vae })
        {
            module.to(device, dtype);
            module.eval();
            module.Freeze();
        }
        return StableDiffusion.FromComponents(source, tokenizer, text, unet, vae, scheduler);
    }

    /// <summary>Distinct prompts in the tokenizer's vocabulary (the tiny tokenizer knows only the tiny world's words).</summary>
    public static List<string> Prompts(string model, int count)
    {
        string[] colours = ["red", "blue", "green", "yellow", "white", "black", "orange", "pink"];
        string subject = model == "tiny" ? "shirt" : "bird";
        return Enumerable.Range(0, count).Select(i => $"a photo of a {colours[i % colours.Length]} {subject} {(i >= colours.Length ? $"number {i}" : "")}".TrimEnd()).ToList();
    }
}
