using System.Text.Json.Serialization;

#pragma warning disable CS1573 // only the parameters that need explaining get a <param> tag

namespace DiffII.Diffusion.Models;

/// <summary>
/// diffusers' <c>AutoencoderKL</c> config.json. Property names are the config keys; absent keys take diffusers'
/// defaults; unknown keys are ignored. <see cref="Validate"/> rejects values this implementation does not support.
/// </summary>
public sealed record AutoencoderKLConfig
{
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 3;
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 3;
    [JsonPropertyName("down_block_types")] public IReadOnlyList<string> DownBlockTypes { get; init; } = ["DownEncoderBlock2D"];
    [JsonPropertyName("up_block_types")] public IReadOnlyList<string> UpBlockTypes { get; init; } = ["UpDecoderBlock2D"];
    [JsonPropertyName("block_out_channels")] public IReadOnlyList<int> BlockOutChannels { get; init; } = [64];
    [JsonPropertyName("layers_per_block")] public int LayersPerBlock { get; init; } = 1;
    [JsonPropertyName("act_fn")] public string ActFn { get; init; } = "silu";
    [JsonPropertyName("latent_channels")] public int LatentChannels { get; init; } = 4;
    [JsonPropertyName("norm_num_groups")] public int NormNumGroups { get; init; } = 32;
    [JsonPropertyName("sample_size")] public OneOrMany<int>? SampleSize { get; init; } = 32;
    /// <summary>Latents fed to the UNet are <c>encode(x).Sample() * scaling_factor</c>; decode takes <c>latent / scaling_factor</c>.</summary>
    [JsonPropertyName("scaling_factor")] public double ScalingFactor { get; init; } = 0.18215;
    /// <summary>Applied by pipelines (SD3/Flux-style VAEs), not by the autoencoder itself; null for SD 1.x/2.x.</summary>
    [JsonPropertyName("shift_factor")] public double? ShiftFactor { get; init; }
    /// <summary>True when the VAE overflows in float16 and should run in float32 (SD 1.x/2.x VAEs).</summary>
    [JsonPropertyName("force_upcast")] public bool ForceUpcast { get; init; } = true;
    [JsonPropertyName("use_quant_conv")] public bool UseQuantConv { get; init; } = true;
    [JsonPropertyName("use_post_quant_conv")] public bool UsePostQuantConv { get; init; } = true;
    [JsonPropertyName("mid_block_add_attention")] public bool MidBlockAddAttention { get; init; } = true;

    public static AutoencoderKLConfig FromFile(string path) => ModelConfigJson.ReadFile<AutoencoderKLConfig>(path);
    public static AutoencoderKLConfig FromJson(string json, string sourceName = "config.json") => ModelConfigJson.Parse<AutoencoderKLConfig>(json, sourceName);
    public string ToJson() => ModelConfigJson.Write(this);

    /// <summary>Image pixels per latent pixel along each side: 2^(number of blocks − 1).</summary>
    public int DownscaleFactor => 1 << (BlockOutChannels.Count - 1);

    /// <summary>Throws <see cref="NotSupportedException"/> naming the key and value of anything this implementation does not build exactly.</summary>
    public void Validate()
    {
        const string model = "AutoencoderKL";
        if (BlockOutChannels.Count == 0) throw new ArgumentException($"{model} config: block_out_channels is empty.");
        if (DownBlockTypes.Count != BlockOutChannels.Count)
            throw new ArgumentException($"{model} config: down_block_types has {DownBlockTypes.Count} entries but block_out_channels has {BlockOutChannels.Count}.");
        if (UpBlockTypes.Count != BlockOutChannels.Count)
            throw new ArgumentException($"{model} config: up_block_types has {UpBlockTypes.Count} entries but block_out_channels has {BlockOutChannels.Count}.");
        foreach (var t in DownBlockTypes)
            if (t != "DownEncoderBlock2D") throw ModelConfigJson.Unsupported(model, "down_block_types", t, "DownEncoderBlock2D");
        foreach (var t in UpBlockTypes)
            if (t != "UpDecoderBlock2D") throw ModelConfigJson.Unsupported(model, "up_block_types", t, "UpDecoderBlock2D");
        if (ActFn != "silu") throw ModelConfigJson.Unsupported(model, "act_fn", ActFn, "silu");
        if (LayersPerBlock < 1) throw new ArgumentException($"{model} config: layers_per_block = {LayersPerBlock} must be at least 1.");
        for (int i = 0; i < BlockOutChannels.Count; i++)
            if (BlockOutChannels[i] % NormNumGroups != 0)
                throw new ArgumentException($"{model} config: block_out_channels[{i}] = {BlockOutChannels[i]} is not a multiple of norm_num_groups = {NormNumGroups}.");
    }
}
