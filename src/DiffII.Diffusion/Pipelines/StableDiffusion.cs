using System.Text.Json;
using System.Text.Json.Nodes;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.Schedulers;
using DiffII.Diffusion.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Pipelines;

/// <summary>How to load a Stable Diffusion model.</summary>
public sealed record StableDiffusionLoadOptions
{
    /// <summary>cpu (default), cuda, cuda:1 …</summary>
    public Device? Device { get; init; }
    /// <summary>Weights dtype; float32 by default (on GPUs, float16 or bfloat16 halve memory and time).</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;
    /// <summary>A diffusers weight variant such as "fp16"; components without it fall back to their default weights.</summary>
    public string? Variant { get; init; }
    /// <summary>For single-file checkpoints, which carry no tokenizer: a folder with vocab.json and merges.txt.</summary>
    public string? TokenizerFolder { get; init; }
    /// <summary>For single-file SD 2.x checkpoints: epsilon (512-px base models) or v_prediction (768-px models, the default).</summary>
    public string? PredictionType { get; init; }
    /// <summary>
    /// For single-file checkpoints whose architecture is not stock SD 1.5 / 2.1: a diffusers folder whose component
    /// configs (and tokenizer, unless <see cref="TokenizerFolder"/> is given) describe the checkpoint.
    /// </summary>
    public string? ConfigsFrom { get; init; }
}

/// <summary>
/// A loaded Stable Diffusion: tokenizer, CLIP text encoder, U-Net, VAE and the DDIM scheduler config, on one device
/// and dtype. The samplers (<see cref="Sampling"/>) drive it; this class only encodes and predicts.
/// </summary>
public sealed class StableDiffusion : IDisposable
{
    StableDiffusion(string source, ClipTokenizer tokenizer, ClipTextModel textEncoder, UNet2DConditionModel unet, AutoencoderKL vae,
        DDIMSchedulerConfig schedulerConfig, Device device, ScalarType dtype)
    {
        Source = source; Tokenizer = tokenizer; TextEncoder = textEncoder; Unet = unet; Vae = vae;
        SchedulerConfig = schedulerConfig; Device = device; DType = dtype;
        Schedule = new NoiseSchedule(schedulerConfig);
    }

    public string Source { get; }
    public ClipTokenizer Tokenizer { get; }
    public ClipTextModel TextEncoder { get; }
    public UNet2DConditionModel Unet { get; }
    public AutoencoderKL Vae { get; }
    public DDIMSchedulerConfig SchedulerConfig { get; }
    public NoiseSchedule Schedule { get; }
    public Device Device { get; }
    public ScalarType DType { get; }

    /// <summary>Pixel size the model was trained at: U-Net sample size × VAE downscale factor.</summary>
    public int ImageSize => (Unet.Config.SampleSize?.Values[0] ?? 64) * Vae.DownscaleFactor;
    public int LatentChannels => Vae.Config.LatentChannels;

    /// <summary>Assembles a pipeline from components already in memory (e.g. freshly trained ones).</summary>
    public static StableDiffusion FromComponents(string source, ClipTokenizer tokenizer, ClipTextModel textEncoder, UNet2DConditionModel unet,
        AutoencoderKL vae, DDIMSchedulerConfig schedulerConfig)
    {
        var p = unet.parameters().First();
        return new StableDiffusion(source, tokenizer, textEncoder, unet, vae, schedulerConfig, p.device, p.dtype);
    }

    /// <summary>Loads a diffusers folder (model_index.json …) or a single-file SD 1.x / 2.x checkpoint.</summary>
    public static StableDiffusion Load(string path, StableDiffusionLoadOptions? options = null)
    {
        options ??= new StableDiffusionLoadOptions();
        var device = options.Device ?? CPU;
        TorchRuntime.EnsureLoaded(device.type);
        var descriptor = DiffusersFolder.Describe(path, new DiffusersFolderOptions { Variant = options.Variant });
        return descriptor.Layout == CheckpointLayout.SingleFile
            ? LoadSingleFile(descriptor.Path, options, device)
            : LoadFolder(descriptor, options, device);
    }

    static StableDiffusion LoadFolder(CheckpointDescriptor d, StableDiffusionLoadOptions options, Device device)
    {
        var tokenizer = ClipTokenizer.FromFolder(d.Tokenizer!.Directory);
        var textEncoder = ClipTextModel.FromConfigFile(d.TextEncoder!.ConfigPath);
        using (var weights = d.TextEncoder.OpenWeights()) textEncoder.LoadWeights(weights);
        var unet = UNet2DConditionModel.FromConfigFile(d.Unet!.ConfigPath);
        using (var weights = d.Unet.OpenWeights()) unet.LoadWeights(weights);
        var vae = AutoencoderKL.FromConfigFile(d.Vae!.ConfigPath);
        using (var weights = d.Vae.OpenWeights()) vae.LoadWeights(weights);
        var scheduler = DDIMSchedulerConfig.FromFile(d.Scheduler!.ConfigPath);
        return Finish(d.Path, tokenizer, textEncoder, unet, vae, scheduler, device, options.DType);
    }

    static StableDiffusion LoadSingleFile(string path, StableDiffusionLoadOptions options, Device device)
    {
        var configFolder = options.ConfigsFrom is null ? null : DiffusersFolder.Describe(options.ConfigsFrom);
        string? tokenizerFolder = options.TokenizerFolder ?? configFolder?.Tokenizer?.Directory;
        if (tokenizerFolder is null)
            throw new ArgumentException(
                $"{path} is a single-file checkpoint, which holds no tokenizer. Pass a tokenizer folder (vocab.json + merges.txt), " +
                "e.g. the tokenizer/ folder of any diffusers Stable Diffusion of the same family (CLIP for SD 1.x, OpenCLIP for SD 2.x).");
        using var checkpoint = SingleFileCheckpoint.Open(path);
        var configs = configFolder is not null
            ? new StableDiffusionConfigs(UNet2DConditionConfig.FromFile(configFolder.Unet!.ConfigPath), AutoencoderKLConfig.FromFile(configFolder.Vae!.ConfigPath),
                ClipTextConfig.FromFile(configFolder.TextEncoder!.ConfigPath), DDIMSchedulerConfig.FromFile(configFolder.Scheduler!.ConfigPath))
            : checkpoint.Version == StableDiffusionVersion.V1 ? StableDiffusionConfigs.V15 : StableDiffusionConfigs.V21;
        var scheduler = configs.Scheduler with { PredictionType = options.PredictionType ?? configs.Scheduler.PredictionType };
        var tokenizer = ClipTokenizer.FromFolder(tokenizerFolder);
        var textEncoder = new ClipTextModel(configs.TextEncoder);
        textEncoder.LoadWeights(checkpoint.TextEncoder);
        var unet = new UNet2DConditionModel(configs.UNet);
        unet.LoadWeights(checkpoint.Unet);
        var vae = new AutoencoderKL(configs.Vae);
        vae.LoadWeights(checkpoint.Vae);
        return Finish(path, tokenizer, textEncoder, unet, vae, scheduler, device, options.DType);
    }

    static StableDiffusion Finish(string source, ClipTokenizer tokenizer, ClipTextModel textEncoder, UNet2DConditionModel unet, AutoencoderKL vae,
        DDIMSchedulerConfig scheduler, Device device, ScalarType dtype)
    {
        if (unet.Config.CrossAttentionDimPerBlock().Any(d => d != textEncoder.Config.HiddenSize))
            throw new CheckpointMismatchException($"{source}: the U-Net attends to {unet.Config.CrossAttentionDimPerBlock()[0]}-wide text states but the text encoder produces {textEncoder.Config.HiddenSize}.");
        if (tokenizer.VocabSize > textEncoder.VocabSize)
            throw new CheckpointMismatchException($"{source}: the tokenizer has {tokenizer.VocabSize} tokens but the text encoder only {textEncoder.VocabSize} embeddings.");
        foreach (var m in new nn.Module[] { textEncoder, unet, vae })
        {
            m.to(device, dtype);
            m.eval();
            m.Freeze();
        }
        return new StableDiffusion(source, tokenizer, textEncoder, unet, vae, scheduler, device, dtype);
    }

    /// <summary>
    /// Tokenises and encodes prompts to the U-Net's conditioning: [B, 77, hidden], row b for prompt b. Each distinct
    /// prompt goes through the text encoder once; repeats (a batch of one class shares its prompt) are copies of
    /// its row, so a batch of 8 samples of one class costs one text-encoder row, not 8.
    /// </summary>
    public Tensor EncodePrompts(IReadOnlyList<string> prompts)
    {
        if (prompts.Count == 0) throw new ArgumentException("No prompts to encode.", nameof(prompts));
        var rowOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var distinct = new List<string>();
        var rows = new long[prompts.Count];
        for (int i = 0; i < prompts.Count; i++)
        {
            if (!rowOf.TryGetValue(prompts[i], out int row))
            {
                row = distinct.Count;
                rowOf[prompts[i]] = row;
                distinct.Add(prompts[i]);
            }
            rows[i] = row;
        }
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var ids = Tokenizer.EncodeBatch(distinct, Device);
        var states = TextEncoder.forward(ids);
        if (distinct.Count == prompts.Count) return scope.MoveToOuter(states);
        return scope.MoveToOuter(states.index_select(0, tensor(rows, ScalarType.Int64, Device)));
    }

    /// <summary>
    /// Images in [−1, 1] ([B, 3, H, W]) to scaled latents: the posterior mean × scaling factor, as the official
    /// Diff-II inversion does (no sampling noise).
    /// </summary>
    public Tensor EncodeImages(Tensor images)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var posterior = Vae.Encode(images.to(DType, Device));
        return scope.MoveToOuter(posterior.Mean.Mul(Vae.ScalingFactor));
    }

    /// <summary>Scaled latents back to images in [−1, 1] (clamped), float32 on the CPU.</summary>
    public Tensor DecodeLatents(Tensor latents)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var images = Vae.Decode(latents.to(DType, Device).Div(Vae.ScalingFactor));
        return scope.MoveToOuter(images.to(ScalarType.Float32, CPU).Clamp(-1, 1));
    }

    /// <summary>One U-Net evaluation at one timestep for the whole batch.</summary>
    public Tensor PredictNoise(Tensor latents, long timestep, Tensor textStates)
    {
        using var scope = NewDisposeScope();
        var t = tensor(timestep, ScalarType.Int64, Device);
        return scope.MoveToOuter(Unet.forward(latents.to(DType), t, textStates.to(DType)));
    }

    /// <summary>
    /// Writes the model as a diffusers folder (model_index.json and one sub-folder per component, safetensors weights
    /// in <paramref name="dtype"/>), loadable by this class and by diffusers' StableDiffusionPipeline.
    /// </summary>
    public void SaveDiffusersFolder(string folder, ScalarType? dtype = null)
    {
        Directory.CreateDirectory(folder);
        var saveType = dtype ?? DType;
        var modelIndex = new JsonObject
        {
            ["_class_name"] = "StableDiffusionPipeline",
            ["_diffusers_version"] = "0.25.0",
            ["feature_extractor"] = new JsonArray(null, null),
            ["requires_safety_checker"] = false,
            ["safety_checker"] = new JsonArray(null, null),
            ["scheduler"] = new JsonArray("diffusers", "DDIMScheduler"),
            ["text_encoder"] = new JsonArray("transformers", "CLIPTextModel"),
            ["tokenizer"] = new JsonArray("transformers", "CLIPTokenizer"),
            ["unet"] = new JsonArray("diffusers", "UNet2DConditionModel"),
            ["vae"] = new JsonArray("diffusers", "AutoencoderKL"),
        };
        File.WriteAllText(Path.Combine(folder, "model_index.json"), modelIndex.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        WriteComponent(folder, "unet", Unet.Config.ToJson(), "diffusion_pytorch_model.safetensors", Unet, saveType);
        WriteComponent(folder, "vae", Vae.Config.ToJson(), "diffusion_pytorch_model.safetensors", Vae, saveType);
        WriteComponent(folder, "text_encoder", TextEncoder.CurrentConfig.ToJson(), "model.safetensors", TextEncoder, saveType);
        Directory.CreateDirectory(Path.Combine(folder, "scheduler"));
        var scheduler = JsonNode.Parse(SchedulerConfig.ToJson())!.AsObject();
        scheduler["_class_name"] = "DDIMScheduler";
        File.WriteAllText(Path.Combine(folder, "scheduler", "scheduler_config.json"), scheduler.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Tokenizer.SaveFolder(Path.Combine(folder, "tokenizer"));
    }

    static void WriteComponent(string folder, string name, string configJson, string weightsFile, nn.Module module, ScalarType dtype)
    {
        string dir = Path.Combine(folder, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), configJson);
        using var scope = NewDisposeScope();
        var tensors = module.state_dict().ToDictionary(kv => kv.Key,
            kv => kv.Value.is_floating_point() ? kv.Value.detach().to(dtype, CPU) : kv.Value.detach().cpu());
        SafeTensorsFile.Save(Path.Combine(dir, weightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    public void Dispose()
    {
        TextEncoder.Dispose();
        Unet.Dispose();
        Vae.Dispose();
    }
}
