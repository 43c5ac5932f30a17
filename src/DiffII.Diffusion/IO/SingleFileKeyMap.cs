using DiffII.Diffusion.Runtime;
using static TorchSharp.torch;

namespace DiffII.Diffusion.IO;

/// <summary>How the text encoder is stored in a single-file checkpoint.</summary>
public enum TextEncoderLayout
{
    /// <summary>Hugging Face CLIPTextModel names under <c>cond_stage_model.transformer.</c> (SD 1.x, CLIP ViT-L/14).</summary>
    Clip,
    /// <summary>OpenCLIP names under <c>cond_stage_model.model.</c>, fused q/k/v <c>in_proj</c> (SD 2.x, OpenCLIP ViT-H/14).</summary>
    OpenClip,
}

/// <summary>
/// The renaming rules between the CompVis/LDM single-file layout and the diffusers component layouts, in both
/// directions. The rules are structural (block and layer numbers are computed, not listed), so they cover any
/// UNet/VAE depth, e.g. the tiny test models as well as SD 1.5 and 2.1.
/// </summary>
/// <remarks>
/// Facts the rules encode (from the diffusers ↔ original key lists of SD 1.5/2.1 and diffusers' own converters):
/// <list type="bullet">
/// <item>UNet <c>input_blocks.0.0</c> is <c>conv_in</c>; <c>input_blocks.i</c> (i ≥ 1) is layer (i−1) mod (L+1) of down block
/// (i−1) div (L+1), where L = layers_per_block; layer L of a block is its downsampler (<c>0.op</c>). Inside a layer, child 0
/// is the resnet and child 1 the transformer. <c>output_blocks.i</c> is layer i mod (L+1) of up block i div (L+1); the
/// upsampler sits in the last layer as child 1 (no attention) or 2 (after the attention), always <c>.conv</c>.
/// <c>middle_block.0/1/2</c> = mid resnet 0, attention 0, resnet 1. <c>time_embed.0/2</c> = <c>time_embedding.linear_1/2</c>,
/// <c>out.0/2</c> = <c>conv_norm_out</c>/<c>conv_out</c>. Resnet parts: <c>in_layers.0/2</c> = norm1/conv1,
/// <c>out_layers.0/3</c> = norm2/conv2, <c>emb_layers.1</c> = time_emb_proj, <c>skip_connection</c> = conv_shortcut.
/// Transformer internals have the same names in both layouts.</item>
/// <item>VAE: <c>down.i.block.j</c> = <c>down_blocks.i.resnets.j</c>; <c>up.i</c> = <c>up_blocks.(N−1−i)</c> (the decoder is
/// numbered from the lowest resolution in the original); <c>downsample</c>/<c>upsample</c> = <c>downsamplers.0</c>/<c>upsamplers.0</c>;
/// <c>mid.block_1/2</c> = <c>mid_block.resnets.0/1</c>; <c>mid.attn_1.norm/q/k/v/proj_out</c> =
/// <c>mid_block.attentions.0.group_norm/to_q/to_k/to_v/to_out.0</c>, where the original weights are 1×1 convolutions
/// [C, C, 1, 1] and the diffusers ones linear [C, C]; <c>nin_shortcut</c> = <c>conv_shortcut</c>; <c>norm_out</c> = <c>conv_norm_out</c>.</item>
/// <item>OpenCLIP: <c>token_embedding</c>, <c>positional_embedding</c>, <c>ln_final</c>; <c>transformer.resblocks.n.ln_1/ln_2/mlp.c_fc/mlp.c_proj/attn.out_proj</c> =
/// <c>encoder.layers.n.layer_norm1/layer_norm2/mlp.fc1/mlp.fc2/self_attn.out_proj</c>; <c>attn.in_proj_weight/bias</c> [3H, …]
/// holds q, k, v in that order. SD 2 conditions on the penultimate layer, so diffusers keeps all resblocks but the last.</item>
/// </list>
/// </remarks>
internal static class SingleFileKeyMap
{
    internal const string UnetPrefix = "model.diffusion_model.";
    internal const string VaePrefix = "first_stage_model.";
    internal const string ClipPrefix = "cond_stage_model.transformer.";
    internal const string OpenClipPrefix = "cond_stage_model.model.";
    internal const string PositionIdsKey = "text_model.embeddings.position_ids";
    internal const string PositionEmbeddingKey = "text_model.embeddings.position_embedding.weight";

    /// <summary>The LDM DDPM schedule buffers saved with every CompVis checkpoint; the scheduler recomputes them.</summary>
    internal static readonly string[] DdpmBuffers =
    [
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    ];

    /// <summary>The three diffusers components of a single-file checkpoint, as the names other code uses.</summary>
    internal static readonly string[] Components = ["unet", "vae", "text_encoder"];

    /// <summary>Original keys sorted into the three diffusers components, plus the keys left out on purpose and those not understood.</summary>
    internal sealed record ForwardMapping(
        List<MappedTensor> Unet, List<MappedTensor> Vae, List<MappedTensor> TextEncoder,
        List<string> Ignored, List<string> Unrecognized, int LayersPerBlock);

    // ───────────────────────────── original → diffusers ─────────────────────────────

    internal static ForwardMapping ToDiffusers(ITensorSource source, TextEncoderLayout textLayout)
    {
        var keys = source.Keys.ToList();
        var unet = new List<MappedTensor>();
        var vae = new List<MappedTensor>();
        var text = new List<MappedTensor>();
        var ignored = new List<string>();
        var unrecognized = new List<string>();

        int layersPerBlock = InferLayersPerBlock(keys.Where(k => k.StartsWith(UnetPrefix, StringComparison.Ordinal)).Select(k => k[UnetPrefix.Length..]));
        int vaeUpBlocks = keys.Where(k => k.StartsWith(VaePrefix + "decoder.up.", StringComparison.Ordinal))
            .Select(k => IntAt(k[VaePrefix.Length..].Split('.'), 2) ?? -1).DefaultIfEmpty(-1).Max() + 1;
        int lastResblock = keys.Where(k => k.StartsWith(OpenClipPrefix + "transformer.resblocks.", StringComparison.Ordinal))
            .Select(k => IntAt(k[OpenClipPrefix.Length..].Split('.'), 2) ?? -1).DefaultIfEmpty(-1).Max();

        foreach (string key in keys)
        {
            if (IsAlwaysIgnored(key)) { ignored.Add(key); continue; }
            source.TryGetShape(key, out var shape);
            if (key.StartsWith(UnetPrefix, StringComparison.Ordinal))
            {
                string? name = UnetToDiffusers(key[UnetPrefix.Length..], layersPerBlock);
                if (name is null) unrecognized.Add(key);
                else unet.Add(Same(source, key, name, shape));
            }
            else if (key.StartsWith(VaePrefix, StringComparison.Ordinal))
            {
                var (name, linearize) = VaeToDiffusers(key[VaePrefix.Length..], vaeUpBlocks);
                if (name is null) unrecognized.Add(key);
                else if (linearize && shape.Length > 2) vae.Add(Reshaped(source, key, name, shape[..2]));
                else vae.Add(Same(source, key, name, shape));
            }
            else if (textLayout == TextEncoderLayout.Clip && key.StartsWith(ClipPrefix, StringComparison.Ordinal))
            {
                string rest = key[ClipPrefix.Length..];
                // Very old checkpoints predate transformers' text_model wrapper; the names below it are the same.
                string name = rest.StartsWith("text_model.", StringComparison.Ordinal) ? rest : "text_model." + rest;
                // Merged/fine-tuned checkpoints are known to carry damaged position_ids (averaged into floats); the
                // buffer is always 0..n−1, so it is recreated below rather than read.
                if (name == PositionIdsKey) ignored.Add(key);
                else text.Add(Same(source, key, name, shape));
            }
            else if (textLayout == TextEncoderLayout.OpenClip && key.StartsWith(OpenClipPrefix, StringComparison.Ordinal))
            {
                string rest = key[OpenClipPrefix.Length..];
                if (rest is "text_projection" or "logit_scale") { ignored.Add(key); continue; }
                var parts = rest.Split('.');
                if (rest.StartsWith("transformer.resblocks.", StringComparison.Ordinal) && IntAt(parts, 2) == lastResblock)
                {
                    ignored.Add(key);
                    continue;
                }
                if (!OpenClipToDiffusers(source, key, rest, shape, text)) unrecognized.Add(key);
            }
            else unrecognized.Add(key);
        }

        if (text.FirstOrDefault(t => t.Key == PositionEmbeddingKey) is { } positions)
        {
            long count = positions.Shape[0];
            text.Add(new MappedTensor(PositionIdsKey, [1, count], "(0..n-1, recreated)", () => PositionIds(count)));
        }
        return new ForwardMapping(unet, vae, text, ignored, unrecognized, layersPerBlock);
    }

    static bool IsAlwaysIgnored(string key) =>
        DdpmBuffers.Contains(key) || key.StartsWith("model_ema.", StringComparison.Ordinal);

    /// <summary>L from the original numbering: the first downsampler sits at <c>input_blocks.(L+1)</c>.</summary>
    static int InferLayersPerBlock(IEnumerable<string> unetKeys)
    {
        int firstOp = int.MaxValue, lastInput = 0;
        foreach (string k in unetKeys)
        {
            var p = k.Split('.');
            if (p[0] != "input_blocks" || IntAt(p, 1) is not int i) continue;
            lastInput = Math.Max(lastInput, i);
            if (p.Length > 3 && p[2] == "0" && p[3] == "op") firstOp = Math.Min(firstOp, i);
        }
        // Without any downsampler there is a single down block: input_blocks 1..L.
        return firstOp == int.MaxValue ? Math.Max(lastInput, 1) : firstOp - 1;
    }

    internal static string? UnetToDiffusers(string key, int layersPerBlock)
    {
        var p = key.Split('.');
        int stride = layersPerBlock + 1;
        switch (p[0])
        {
            case "time_embed":
                return p.Length == 3 ? p[1] switch { "0" => "time_embedding.linear_1." + p[2], "2" => "time_embedding.linear_2." + p[2], _ => null } : null;
            case "out":
                return p.Length == 3 ? p[1] switch { "0" => "conv_norm_out." + p[2], "2" => "conv_out." + p[2], _ => null } : null;
            case "input_blocks" when IntAt(p, 1) is int i && p.Length >= 4:
            {
                if (i == 0) return p[2] == "0" && p.Length == 4 ? "conv_in." + p[3] : null;
                int block = (i - 1) / stride, layer = (i - 1) % stride;
                if (layer == layersPerBlock)
                    return p[2] == "0" && p[3] == "op" && p.Length == 5 ? $"down_blocks.{block}.downsamplers.0.conv.{p[4]}" : null;
                return p[2] switch
                {
                    "0" => ResnetToDiffusers(p[3..]) is { } r ? $"down_blocks.{block}.resnets.{layer}.{r}" : null,
                    "1" => $"down_blocks.{block}.attentions.{layer}.{Join(p, 3)}",
                    _ => null,
                };
            }
            case "middle_block" when IntAt(p, 1) is int i && p.Length >= 3:
                return i switch
                {
                    0 or 2 => ResnetToDiffusers(p[2..]) is { } r ? $"mid_block.resnets.{i / 2}.{r}" : null,
                    1 => "mid_block.attentions.0." + Join(p, 2),
                    _ => null,
                };
            case "output_blocks" when IntAt(p, 1) is int i && p.Length >= 4:
            {
                int block = i / stride, layer = i % stride;
                if (p[3] == "conv" && p[2] is "1" or "2")
                    return layer == layersPerBlock && p.Length == 5 ? $"up_blocks.{block}.upsamplers.0.conv.{p[4]}" : null;
                return p[2] switch
                {
                    "0" => ResnetToDiffusers(p[3..]) is { } r ? $"up_blocks.{block}.resnets.{layer}.{r}" : null,
                    "1" => $"up_blocks.{block}.attentions.{layer}.{Join(p, 3)}",
                    _ => null,
                };
            }
            default:
                return null;
        }
    }

    internal static readonly (string Original, string Diffusers)[] UnetResnetParts =
    [
        ("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("out_layers.0", "norm2"), ("out_layers.3", "conv2"),
        ("emb_layers.1", "time_emb_proj"), ("skip_connection", "conv_shortcut"),
    ];

    static string? ResnetToDiffusers(string[] rest)
    {
        string joined = string.Join('.', rest);
        foreach (var (original, diffusers) in UnetResnetParts)
            if (joined.StartsWith(original + ".", StringComparison.Ordinal) && joined.Count(c => c == '.') == original.Count(c => c == '.') + 1)
                return diffusers + joined[original.Length..];
        return null;
    }

    internal static readonly Dictionary<string, string> VaeAttentionParts = new()
    {
        ["norm"] = "group_norm", ["q"] = "to_q", ["k"] = "to_k", ["v"] = "to_v", ["proj_out"] = "to_out.0",
    };

    /// <returns>The diffusers key (null when not understood) and whether a 1×1 conv weight must become a linear one.</returns>
    internal static (string? Name, bool Linearize) VaeToDiffusers(string key, int upBlocks)
    {
        var p = key.Split('.');
        if (p[0] is "quant_conv" or "post_quant_conv") return (p.Length == 2 ? key : null, false);
        if (p[0] is not ("encoder" or "decoder") || p.Length < 3) return (null, false);
        string coder = p[0];
        switch (p[1])
        {
            case "conv_in" or "conv_out" when p.Length == 3: return (key, false);
            case "norm_out" when p.Length == 3: return ($"{coder}.conv_norm_out.{p[2]}", false);
            case "mid" when p.Length >= 4:
                switch (p[2])
                {
                    case "block_1" or "block_2":
                        return (VaeResnet(p[3..]) is { } r ? $"{coder}.mid_block.resnets.{(p[2] == "block_1" ? 0 : 1)}.{r}" : null, false);
                    case "attn_1" when p.Length == 5 && VaeAttentionParts.TryGetValue(p[3], out var part):
                        return ($"{coder}.mid_block.attentions.0.{part}.{p[4]}", p[3] != "norm" && p[4] == "weight");
                }
                return (null, false);
            case "down" when coder == "encoder" && IntAt(p, 2) is int i && p.Length >= 5:
                if (p[3] == "block" && IntAt(p, 4) is int j && VaeResnet(p[5..]) is { } rd) return ($"encoder.down_blocks.{i}.resnets.{j}.{rd}", false);
                if (p[3] == "downsample" && p[4] == "conv" && p.Length == 6) return ($"encoder.down_blocks.{i}.downsamplers.0.conv.{p[5]}", false);
                return (null, false);
            case "up" when coder == "decoder" && IntAt(p, 2) is int i && p.Length >= 5:
                int block = upBlocks - 1 - i;
                if (p[3] == "block" && IntAt(p, 4) is int ju && VaeResnet(p[5..]) is { } ru) return ($"decoder.up_blocks.{block}.resnets.{ju}.{ru}", false);
                if (p[3] == "upsample" && p[4] == "conv" && p.Length == 6) return ($"decoder.up_blocks.{block}.upsamplers.0.conv.{p[5]}", false);
                return (null, false);
        }
        return (null, false);
    }

    static string? VaeResnet(string[] rest) =>
        rest.Length == 2 && rest[0] is "norm1" or "conv1" or "norm2" or "conv2" or "nin_shortcut"
            ? (rest[0] == "nin_shortcut" ? "conv_shortcut" : rest[0]) + "." + rest[1]
            : null;

    internal static readonly (string Original, string Diffusers)[] OpenClipLayerParts =
    [
        ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2"), ("attn.out_proj", "self_attn.out_proj"),
    ];

    static bool OpenClipToDiffusers(ITensorSource source, string key, string rest, long[] shape, List<MappedTensor> text)
    {
        switch (rest)
        {
            case "token_embedding.weight": text.Add(Same(source, key, "text_model.embeddings.token_embedding.weight", shape)); return true;
            case "positional_embedding": text.Add(Same(source, key, PositionEmbeddingKey, shape)); return true;
            case "ln_final.weight" or "ln_final.bias": text.Add(Same(source, key, "text_model.final_layer_norm." + rest[9..], shape)); return true;
        }
        var p = rest.Split('.');
        if (p.Length < 5 || p[0] != "transformer" || p[1] != "resblocks" || IntAt(p, 2) is not int n) return false;
        string layer = $"text_model.encoder.layers.{n}.";
        string inner = Join(p, 3);
        if (inner is "attn.in_proj_weight" or "attn.in_proj_bias")
        {
            if (shape.Length == 0 || shape[0] % 3 != 0) return false;
            long width = shape[0] / 3;
            string suffix = inner.EndsWith("weight", StringComparison.Ordinal) ? "weight" : "bias";
            string[] names = ["q_proj", "k_proj", "v_proj"];
            for (int part = 0; part < 3; part++)
            {
                long start = part * width;
                long[] partShape = [width, .. shape[1..]];
                text.Add(new MappedTensor($"{layer}self_attn.{names[part]}.{suffix}", partShape, $"{key}[{start}:{start + width}]", () =>
                {
                    using var full = source.Load(key);
                    using var rows = full.narrow(0, start, width);
                    return rows.clone();
                }));
            }
            return true;
        }
        foreach (var (original, diffusers) in OpenClipLayerParts)
            if (inner.StartsWith(original + ".", StringComparison.Ordinal) && inner[(original.Length + 1)..] is "weight" or "bias")
            {
                text.Add(Same(source, key, layer + diffusers + inner[original.Length..], shape));
                return true;
            }
        return false;
    }

    // ───────────────────────────── helpers ─────────────────────────────

    internal static MappedTensor Same(ITensorSource source, string from, string to, long[] shape) => new(to, shape, from, () => source.Load(from));

    internal static MappedTensor Reshaped(ITensorSource source, string from, string to, long[] shape) =>
        new(to, shape, from, () =>
        {
            using var t = source.Load(from);
            return t.reshape(shape);
        });

    internal static Tensor PositionIds(long count)
    {
        using var ids = KeptScalars.Arange(count, ScalarType.Int64);
        return ids.unsqueeze(0);
    }

    internal static long[] Shape(ITensorSource source, string key) =>
        source.TryGetShape(key, out var shape) ? shape : throw new CheckpointLayoutException($"{source.Name}: lists '{key}' but has no shape for it.");

    internal static int? IntAt(string[] parts, int index) =>
        index < parts.Length && int.TryParse(parts[index], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v) ? v : null;

    internal static string Join(string[] parts, int from) => string.Join('.', parts[from..]);
}
