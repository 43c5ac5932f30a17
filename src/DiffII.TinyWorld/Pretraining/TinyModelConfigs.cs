using DiffII.Diffusion.Models;

namespace DiffII.TinyWorld.Pretraining;

/// <summary>
/// The embedded tiny generator's architecture: Stable Diffusion's components at a size two CPU cores can train and
/// run. 32×32 RGB images, a VAE with 4× downsampling (8×8×4 latents), a U-Net of about 6 M parameters with
/// cross-attention at 8×8 and 4×4, and a 3-layer CLIP text encoder over a few hundred BPE tokens.
/// A 16×16 latent (2× downsampling) keeps more of an item's detail; its U-Net then has plain convolutions at 16×16
/// and cross-attention at 8×8 and 4×4, as Stable Diffusion leaves its widest maps to the cheaper layers' neighbours.
/// </summary>
public static class TinyModelConfigs
{
    public const int ImageSize = 32;
    public const int TextHidden = 64;

    /// <summary>The latent sizes a tiny model can have: 8 (the committed model's) or 16.</summary>
    public static readonly int[] LatentSizes = [8, 16];

    /// <summary>
    /// The VAE; <paramref name="latentChannels"/> is 4 in the committed model (Stable Diffusion's count) and
    /// <paramref name="latentSize"/> 8 (one downsampling block fewer makes it 16).
    /// </summary>
    public static AutoencoderKLConfig Vae(double scalingFactor = 1.0, int latentChannels = 4, int latentSize = 8) => AutoencoderKLConfig.FromJson($$"""
        {
          "_class_name": "AutoencoderKL",
          "in_channels": 3, "out_channels": 3, "latent_channels": {{latentChannels}},
          "block_out_channels": {{(CheckedLatentSize(latentSize) == 8 ? "[32, 64, 64]" : "[32, 64]")}}, "layers_per_block": 1,
          "down_block_types": {{Repeated("DownEncoderBlock2D", latentSize == 8 ? 3 : 2)}},
          "up_block_types": {{Repeated("UpDecoderBlock2D", latentSize == 8 ? 3 : 2)}},
          "act_fn": "silu", "norm_num_groups": 16, "sample_size": {{ImageSize}},
          "scaling_factor": {{scalingFactor.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}}
        }
        """, "tiny vae config");

    /// <summary>The U-Net, denoising <paramref name="latentSize"/>² latents of <paramref name="latentChannels"/> channels.</summary>
    public static UNet2DConditionConfig UNet(int latentChannels = 4, int latentSize = 8) => UNet2DConditionConfig.FromJson($$"""
        {
          "_class_name": "UNet2DConditionModel",
          "sample_size": {{CheckedLatentSize(latentSize)}}, "in_channels": {{latentChannels}}, "out_channels": {{latentChannels}},
          "block_out_channels": [64, 128, 128], "layers_per_block": 1,
          "down_block_types": {{(latentSize == 8 ? """["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]""" : """["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]""")}},
          "mid_block_type": "UNetMidBlock2DCrossAttn",
          "up_block_types": {{(latentSize == 8 ? """["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]""" : """["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]""")}},
          "attention_head_dim": 4, "cross_attention_dim": {{TextHidden}}, "norm_num_groups": 16,
          "act_fn": "silu", "flip_sin_to_cos": true, "freq_shift": 0
        }
        """, "tiny unet config");

    static int CheckedLatentSize(int latentSize) => LatentSizes.Contains(latentSize)
        ? latentSize
        : throw new ArgumentOutOfRangeException(nameof(latentSize), latentSize, $"The tiny model's latent is {string.Join(" or ", LatentSizes)} pixels wide.");

    static string Repeated(string blockType, int count) => "[" + string.Join(", ", Enumerable.Repeat($"\"{blockType}\"", count)) + "]";

    /// <summary>The DDIM scheduler config: Stable Diffusion's (scaled_linear 0.00085–0.012, 1000 steps, leading spacing, offset 1).</summary>
    public const string SchedulerJson = """
        {
          "_class_name": "DDIMScheduler",
          "beta_end": 0.012,
          "beta_schedule": "scaled_linear",
          "beta_start": 0.00085,
          "clip_sample": false,
          "num_train_timesteps": 1000,
          "prediction_type": "epsilon",
          "set_alpha_to_one": false,
          "steps_offset": 1,
          "timestep_spacing": "leading",
          "trained_betas": null
        }
        """;
}
