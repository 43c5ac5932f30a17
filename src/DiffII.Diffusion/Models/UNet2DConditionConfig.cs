using System.Text.Json.Serialization;

#pragma warning disable CS1573 // only the parameters that need explaining get a <param> tag

namespace DiffII.Diffusion.Models;

/// <summary>
/// diffusers' <c>UNet2DConditionModel</c> config.json. Property names are the config keys; absent keys take diffusers'
/// defaults; unknown keys are ignored. <see cref="Validate"/> rejects values this implementation does not support.
/// </summary>
public sealed record UNet2DConditionConfig
{
    [JsonPropertyName("sample_size")] public OneOrMany<int>? SampleSize { get; init; }
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 4;
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 4;
    [JsonPropertyName("center_input_sample")] public bool CenterInputSample { get; init; }
    [JsonPropertyName("flip_sin_to_cos")] public bool FlipSinToCos { get; init; } = true;
    [JsonPropertyName("freq_shift")] public double FreqShift { get; init; }
    [JsonPropertyName("down_block_types")] public IReadOnlyList<string> DownBlockTypes { get; init; } =
        ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"];
    [JsonPropertyName("mid_block_type")] public string? MidBlockType { get; init; } = "UNetMidBlock2DCrossAttn";
    [JsonPropertyName("up_block_types")] public IReadOnlyList<string> UpBlockTypes { get; init; } =
        ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"];
    [JsonPropertyName("only_cross_attention")] public OneOrMany<bool> OnlyCrossAttention { get; init; } = false;
    [JsonPropertyName("block_out_channels")] public IReadOnlyList<int> BlockOutChannels { get; init; } = [320, 640, 1280, 1280];
    [JsonPropertyName("layers_per_block")] public OneOrMany<int> LayersPerBlock { get; init; } = 2;
    [JsonPropertyName("downsample_padding")] public int DownsamplePadding { get; init; } = 1;
    [JsonPropertyName("mid_block_scale_factor")] public double MidBlockScaleFactor { get; init; } = 1.0;
    [JsonPropertyName("dropout")] public double Dropout { get; init; }
    [JsonPropertyName("act_fn")] public string ActFn { get; init; } = "silu";
    [JsonPropertyName("norm_num_groups")] public int? NormNumGroups { get; init; } = 32;
    [JsonPropertyName("norm_eps")] public double NormEps { get; init; } = 1e-5;
    [JsonPropertyName("cross_attention_dim")] public OneOrMany<int> CrossAttentionDim { get; init; } = 1280;
    [JsonPropertyName("transformer_layers_per_block")] public OneOrMany<int> TransformerLayersPerBlock { get; init; } = 1;
    /// <summary>Only used by SDXL-style configs with nested per-layer lists; must be null here.</summary>
    [JsonPropertyName("reverse_transformer_layers_per_block")] public System.Text.Json.JsonElement? ReverseTransformerLayersPerBlock { get; init; }
    [JsonPropertyName("encoder_hid_dim")] public int? EncoderHidDim { get; init; }
    [JsonPropertyName("encoder_hid_dim_type")] public string? EncoderHidDimType { get; init; }
    /// <summary>In diffusers this is really the number of heads whenever <see cref="NumAttentionHeads"/> is null (every SD 1.x/2.x config).</summary>
    [JsonPropertyName("attention_head_dim")] public OneOrMany<int>? AttentionHeadDim { get; init; } = 8;
    [JsonPropertyName("num_attention_heads")] public OneOrMany<int>? NumAttentionHeads { get; init; }
    [JsonPropertyName("dual_cross_attention")] public bool DualCrossAttention { get; init; }
    [JsonPropertyName("use_linear_projection")] public bool UseLinearProjection { get; init; }
    [JsonPropertyName("class_embed_type")] public string? ClassEmbedType { get; init; }
    [JsonPropertyName("addition_embed_type")] public string? AdditionEmbedType { get; init; }
    [JsonPropertyName("addition_time_embed_dim")] public int? AdditionTimeEmbedDim { get; init; }
    [JsonPropertyName("num_class_embeds")] public int? NumClassEmbeds { get; init; }
    [JsonPropertyName("upcast_attention")] public bool UpcastAttention { get; init; }
    [JsonPropertyName("resnet_time_scale_shift")] public string ResnetTimeScaleShift { get; init; } = "default";
    [JsonPropertyName("resnet_skip_time_act")] public bool ResnetSkipTimeAct { get; init; }
    [JsonPropertyName("resnet_out_scale_factor")] public double ResnetOutScaleFactor { get; init; } = 1.0;
    [JsonPropertyName("time_embedding_type")] public string TimeEmbeddingType { get; init; } = "positional";
    [JsonPropertyName("time_embedding_dim")] public int? TimeEmbeddingDim { get; init; }
    [JsonPropertyName("time_embedding_act_fn")] public string? TimeEmbeddingActFn { get; init; }
    [JsonPropertyName("timestep_post_act")] public string? TimestepPostAct { get; init; }
    [JsonPropertyName("time_cond_proj_dim")] public int? TimeCondProjDim { get; init; }
    [JsonPropertyName("conv_in_kernel")] public int ConvInKernel { get; init; } = 3;
    [JsonPropertyName("conv_out_kernel")] public int ConvOutKernel { get; init; } = 3;
    [JsonPropertyName("projection_class_embeddings_input_dim")] public int? ProjectionClassEmbeddingsInputDim { get; init; }
    [JsonPropertyName("attention_type")] public string AttentionType { get; init; } = "default";
    [JsonPropertyName("class_embeddings_concat")] public bool ClassEmbeddingsConcat { get; init; }
    [JsonPropertyName("mid_block_only_cross_attention")] public bool? MidBlockOnlyCrossAttention { get; init; }
    [JsonPropertyName("cross_attention_norm")] public string? CrossAttentionNorm { get; init; }
    [JsonPropertyName("addition_embed_type_num_heads")] public int AdditionEmbedTypeNumHeads { get; init; } = 64;

    public static UNet2DConditionConfig FromFile(string path) => ModelConfigJson.ReadFile<UNet2DConditionConfig>(path);
    public static UNet2DConditionConfig FromJson(string json, string sourceName = "config.json") => ModelConfigJson.Parse<UNet2DConditionConfig>(json, sourceName);
    public string ToJson() => ModelConfigJson.Write(this);

    int BlockCount => DownBlockTypes.Count;

    /// <summary>Heads per down block: diffusers uses <c>num_attention_heads or attention_head_dim</c>.</summary>
    public int[] HeadsPerBlock()
    {
        if (NumAttentionHeads is not null) return NumAttentionHeads.Expand(BlockCount, "num_attention_heads");
        if (AttentionHeadDim is null)
            throw new ArgumentException("UNet2DConditionModel config: both num_attention_heads and attention_head_dim are null; one of them gives the number of heads.");
        return AttentionHeadDim.Expand(BlockCount, "attention_head_dim");
    }

    public int[] LayersPerBlockList() => LayersPerBlock.Expand(BlockCount, "layers_per_block");
    public int[] CrossAttentionDimPerBlock() => CrossAttentionDim.Expand(BlockCount, "cross_attention_dim");
    public int[] TransformerLayersPerBlockList() => TransformerLayersPerBlock.Expand(BlockCount, "transformer_layers_per_block");
    /// <summary>Channels of the timestep embedding fed to every ResNet.</summary>
    public int TimeEmbedDim => TimeEmbeddingDim ?? BlockOutChannels[0] * 4;

    /// <summary>Throws <see cref="NotSupportedException"/> naming the key and value of anything this implementation does not build exactly.</summary>
    public void Validate()
    {
        const string model = "UNet2DConditionModel";
        if (BlockOutChannels.Count == 0) throw new ArgumentException($"{model} config: block_out_channels is empty.");
        if (DownBlockTypes.Count != BlockOutChannels.Count)
            throw new ArgumentException($"{model} config: down_block_types has {DownBlockTypes.Count} entries but block_out_channels has {BlockOutChannels.Count}.");
        if (UpBlockTypes.Count != DownBlockTypes.Count)
            throw new ArgumentException($"{model} config: up_block_types has {UpBlockTypes.Count} entries but down_block_types has {DownBlockTypes.Count}.");
        foreach (var t in DownBlockTypes)
            if (t is not ("CrossAttnDownBlock2D" or "DownBlock2D"))
                throw ModelConfigJson.Unsupported(model, "down_block_types", t, "CrossAttnDownBlock2D, DownBlock2D");
        foreach (var t in UpBlockTypes)
            if (t is not ("CrossAttnUpBlock2D" or "UpBlock2D"))
                throw ModelConfigJson.Unsupported(model, "up_block_types", t, "CrossAttnUpBlock2D, UpBlock2D");
        if (MidBlockType != "UNetMidBlock2DCrossAttn") throw ModelConfigJson.Unsupported(model, "mid_block_type", MidBlockType, "UNetMidBlock2DCrossAttn");
        if (ActFn != "silu") throw ModelConfigJson.Unsupported(model, "act_fn", ActFn, "silu");
        if (NormNumGroups is null) throw ModelConfigJson.Unsupported(model, "norm_num_groups", null, "an integer");
        if (OnlyCrossAttention.Values.Any(v => v)) throw ModelConfigJson.Unsupported(model, "only_cross_attention", OnlyCrossAttention, "false");
        if (DualCrossAttention) throw ModelConfigJson.Unsupported(model, "dual_cross_attention", true, "false");
        if (ReverseTransformerLayersPerBlock is { ValueKind: not System.Text.Json.JsonValueKind.Null } r)
            throw ModelConfigJson.Unsupported(model, "reverse_transformer_layers_per_block", r.GetRawText(), "null");
        if (EncoderHidDim is not null) throw ModelConfigJson.Unsupported(model, "encoder_hid_dim", EncoderHidDim, "null");
        if (EncoderHidDimType is not null) throw ModelConfigJson.Unsupported(model, "encoder_hid_dim_type", EncoderHidDimType, "null");
        if (ClassEmbedType is not null) throw ModelConfigJson.Unsupported(model, "class_embed_type", ClassEmbedType, "null");
        if (NumClassEmbeds is not null) throw ModelConfigJson.Unsupported(model, "num_class_embeds", NumClassEmbeds, "null");
        if (AdditionEmbedType is not null) throw ModelConfigJson.Unsupported(model, "addition_embed_type", AdditionEmbedType, "null");
        if (ResnetTimeScaleShift != "default") throw ModelConfigJson.Unsupported(model, "resnet_time_scale_shift", ResnetTimeScaleShift, "default");
        if (TimeEmbeddingType != "positional") throw ModelConfigJson.Unsupported(model, "time_embedding_type", TimeEmbeddingType, "positional");
        if (TimeEmbeddingActFn is not null) throw ModelConfigJson.Unsupported(model, "time_embedding_act_fn", TimeEmbeddingActFn, "null");
        if (TimestepPostAct is not null) throw ModelConfigJson.Unsupported(model, "timestep_post_act", TimestepPostAct, "null");
        if (TimeCondProjDim is not null) throw ModelConfigJson.Unsupported(model, "time_cond_proj_dim", TimeCondProjDim, "null");
        if (AttentionType != "default") throw ModelConfigJson.Unsupported(model, "attention_type", AttentionType, "default");
        if (CrossAttentionNorm is not null) throw ModelConfigJson.Unsupported(model, "cross_attention_norm", CrossAttentionNorm, "null");
        if (ConvInKernel % 2 == 0) throw ModelConfigJson.Unsupported(model, "conv_in_kernel", ConvInKernel, "an odd kernel size");
        if (ConvOutKernel % 2 == 0) throw ModelConfigJson.Unsupported(model, "conv_out_kernel", ConvOutKernel, "an odd kernel size");
        var heads = HeadsPerBlock();
        LayersPerBlockList();
        CrossAttentionDimPerBlock();
        TransformerLayersPerBlockList();
        // diffusers gives each transformer channels // heads per head (the width need not divide evenly); zero would be degenerate.
        for (int i = 0; i < heads.Length; i++)
        {
            bool hasAttention = DownBlockTypes[i] == "CrossAttnDownBlock2D" || UpBlockTypes[heads.Length - 1 - i] == "CrossAttnUpBlock2D" || i == heads.Length - 1;
            if (hasAttention && (heads[i] <= 0 || BlockOutChannels[i] / heads[i] == 0))
                throw new ArgumentException($"{model} config: block {i} has {BlockOutChannels[i]} channels but {heads[i]} attention heads " +
                                            $"({(NumAttentionHeads is null ? "attention_head_dim" : "num_attention_heads")}), leaving no channels per head.");
        }
    }
}
