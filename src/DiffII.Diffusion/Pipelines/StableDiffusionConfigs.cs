using DiffII.Diffusion.Models;
using DiffII.Diffusion.Schedulers;

namespace DiffII.Diffusion.Pipelines;

/// <summary>The component configs of a Stable Diffusion family, for checkpoints that do not carry their own.</summary>
public sealed record StableDiffusionConfigs(UNet2DConditionConfig UNet, AutoencoderKLConfig Vae, ClipTextConfig TextEncoder, DDIMSchedulerConfig Scheduler)
{
    const string SdVae = """
        {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
         "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
         "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
         "act_fn": "silu", "norm_num_groups": 32, "sample_size": 512, "scaling_factor": 0.18215}
        """;

    const string SdScheduler = """
        {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "clip_sample": false,
         "set_alpha_to_one": false, "steps_offset": 1, "prediction_type": "epsilon", "timestep_spacing": "leading"}
        """;

    /// <summary>Stable Diffusion 1.x (CLIP ViT-L/14 text encoder, 768-wide cross-attention).</summary>
    public static StableDiffusionConfigs V15 { get; } = new(
        UNet2DConditionConfig.FromJson("""
            {"sample_size": 64, "in_channels": 4, "out_channels": 4, "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
             "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
             "attention_head_dim": 8, "cross_attention_dim": 768, "norm_num_groups": 32}
            """, "built-in SD 1.5 unet config"),
        AutoencoderKLConfig.FromJson(SdVae, "built-in SD vae config"),
        new ClipTextConfig
        {
            VocabSize = 49408, HiddenSize = 768, IntermediateSize = 3072, ProjectionDim = 768, NumHiddenLayers = 12, NumAttentionHeads = 12,
            MaxPositionEmbeddings = 77, HiddenAct = "quick_gelu", LayerNormEps = 1e-5, PadTokenId = 1, BosTokenId = 0, EosTokenId = 2,
        },
        DDIMSchedulerConfig.FromJson(SdScheduler, "built-in SD scheduler config"));

    /// <summary>Stable Diffusion 2.x (OpenCLIP ViT-H/14 text tower, 1024-wide cross-attention, linear projections, upcast attention).</summary>
    public static StableDiffusionConfigs V21 { get; } = new(
        UNet2DConditionConfig.FromJson("""
            {"sample_size": 96, "in_channels": 4, "out_channels": 4, "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
             "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
             "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024, "use_linear_projection": true, "upcast_attention": true,
             "norm_num_groups": 32}
            """, "built-in SD 2.1 unet config"),
        AutoencoderKLConfig.FromJson(SdVae, "built-in SD vae config"),
        new ClipTextConfig
        {
            VocabSize = 49408, HiddenSize = 1024, IntermediateSize = 4096, ProjectionDim = 512, NumHiddenLayers = 23, NumAttentionHeads = 16,
            MaxPositionEmbeddings = 77, HiddenAct = "gelu", LayerNormEps = 1e-5, PadTokenId = 1, BosTokenId = 0, EosTokenId = 2,
        },
        DDIMSchedulerConfig.FromJson(SdScheduler, "built-in SD scheduler config") with { PredictionType = "v_prediction" });
}
