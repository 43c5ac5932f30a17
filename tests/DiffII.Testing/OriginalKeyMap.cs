using DiffII.Diffusion.IO;
using static DiffII.Diffusion.IO.SingleFileKeyMap;
using static TorchSharp.torch;

namespace DiffII.Testing;

/// <summary>The diffusers → original direction of <see cref="SingleFileKeyMap"/>, for <see cref="CompVisCheckpointWriter"/>.</summary>
internal static class OriginalKeyMap
{

    static string? ResnetToOriginal(string[] rest)
    {
        if (rest.Length != 2) return null;
        foreach (var (original, diffusers) in UnetResnetParts)
            if (rest[0] == diffusers) return original + "." + rest[1];
        return null;
    }

    /// <summary>Maps the tensors of one diffusers component to original names; unknown diffusers keys are collected, not dropped.</summary>
    internal static (List<MappedTensor> Tensors, List<string> Unmapped) ToOriginal(string component, ITensorSource source, TextEncoderLayout textLayout)
    {
        var keys = source.Keys.ToList();
        var result = new List<MappedTensor>();
        var unmapped = new List<string>();
        switch (component)
        {
            case "unet":
            {
                int layersPerBlock = keys.Where(k => k.StartsWith("down_blocks.0.resnets.", StringComparison.Ordinal))
                    .Select(k => IntAt(k.Split('.'), 3) ?? -1).Distinct().Count();
                var upWithAttention = keys.Where(k => k.StartsWith("up_blocks.", StringComparison.Ordinal) && k.Split('.')[2] == "attentions")
                    .Select(k => IntAt(k.Split('.'), 1)).ToHashSet();
                foreach (string key in keys)
                {
                    string? name = UnetToOriginal(key, layersPerBlock, b => upWithAttention.Contains(b));
                    if (name is null) unmapped.Add(key);
                    else result.Add(Same(source, key, UnetPrefix + name, Shape(source, key)));
                }
                break;
            }
            case "vae":
            {
                int upBlocks = keys.Where(k => k.StartsWith("decoder.up_blocks.", StringComparison.Ordinal))
                    .Select(k => IntAt(k.Split('.'), 2) ?? -1).DefaultIfEmpty(-1).Max() + 1;
                foreach (string key in keys)
                {
                    var (name, convolutionize) = VaeToOriginal(key, upBlocks);
                    var shape = Shape(source, key);
                    if (name is null) unmapped.Add(key);
                    else if (convolutionize && shape.Length == 2) result.Add(Reshaped(source, key, VaePrefix + name, [.. shape, 1, 1]));
                    else result.Add(Same(source, key, VaePrefix + name, shape));
                }
                break;
            }
            case "text_encoder" when textLayout == TextEncoderLayout.Clip:
                foreach (string key in keys)
                {
                    if (key.StartsWith("text_model.", StringComparison.Ordinal)) result.Add(Same(source, key, ClipPrefix + key, Shape(source, key)));
                    else unmapped.Add(key);
                }
                // The original CLIP module has the buffer; transformers ≥ 4.31 no longer saves it.
                if (!keys.Contains(PositionIdsKey) && source.TryGetShape(PositionEmbeddingKey, out var positionShape))
                {
                    long count = positionShape[0];
                    result.Add(new MappedTensor(ClipPrefix + PositionIdsKey, [1, count], "(0..n-1, recreated)", () => PositionIds(count)));
                }
                break;
            case "text_encoder":
                TextToOpenClip(source, keys, result, unmapped);
                break;
            default:
                throw new ArgumentException($"Unknown component '{component}'; expected one of {string.Join(", ", Components)}.", nameof(component));
        }
        return (result, unmapped);
    }

    internal static string? UnetToOriginal(string key, int layersPerBlock, Func<int, bool> upBlockHasAttention)
    {
        var p = key.Split('.');
        int stride = layersPerBlock + 1;
        switch (p[0])
        {
            case "conv_in" when p.Length == 2: return "input_blocks.0.0." + p[1];
            case "conv_norm_out" when p.Length == 2: return "out.0." + p[1];
            case "conv_out" when p.Length == 2: return "out.2." + p[1];
            case "time_embedding" when p.Length == 3:
                return p[1] switch { "linear_1" => "time_embed.0." + p[2], "linear_2" => "time_embed.2." + p[2], _ => null };
            case "down_blocks" when IntAt(p, 1) is int b && p.Length >= 5:
                if (p[2] == "downsamplers" && p[3] == "0" && p[4] == "conv" && p.Length == 6) return $"input_blocks.{(b + 1) * stride}.0.op.{p[5]}";
                if (IntAt(p, 3) is not int j || j >= layersPerBlock) return null;
                int input = 1 + b * stride + j;
                return p[2] switch
                {
                    "resnets" => ResnetToOriginal(p[4..]) is { } r ? $"input_blocks.{input}.0.{r}" : null,
                    "attentions" => $"input_blocks.{input}.1.{Join(p, 4)}",
                    _ => null,
                };
            case "mid_block" when IntAt(p, 2) is int m && p.Length >= 4:
                return p[1] switch
                {
                    "resnets" when m is 0 or 1 => ResnetToOriginal(p[3..]) is { } r ? $"middle_block.{m * 2}.{r}" : null,
                    "attentions" when m == 0 => "middle_block.1." + Join(p, 3),
                    _ => null,
                };
            case "up_blocks" when IntAt(p, 1) is int b && p.Length >= 5:
                if (p[2] == "upsamplers" && p[3] == "0" && p[4] == "conv" && p.Length == 6)
                    return $"output_blocks.{b * stride + layersPerBlock}.{(upBlockHasAttention(b) ? 2 : 1)}.conv.{p[5]}";
                if (IntAt(p, 3) is not int k || k > layersPerBlock) return null;
                int output = b * stride + k;
                return p[2] switch
                {
                    "resnets" => ResnetToOriginal(p[4..]) is { } r ? $"output_blocks.{output}.0.{r}" : null,
                    "attentions" => $"output_blocks.{output}.1.{Join(p, 4)}",
                    _ => null,
                };
        }
        return null;
    }

    /// <returns>The original key (null when not understood) and whether a linear weight must become a 1×1 conv weight.</returns>
    internal static (string? Name, bool Convolutionize) VaeToOriginal(string key, int upBlocks)
    {
        var p = key.Split('.');
        if (p[0] is "quant_conv" or "post_quant_conv") return (p.Length == 2 ? key : null, false);
        if (p[0] is not ("encoder" or "decoder") || p.Length < 3) return (null, false);
        string coder = p[0];
        switch (p[1])
        {
            case "conv_in" or "conv_out" when p.Length == 3: return (key, false);
            case "conv_norm_out" when p.Length == 3: return ($"{coder}.norm_out.{p[2]}", false);
            case "mid_block" when p.Length >= 5 && IntAt(p, 3) is int m:
                if (p[2] == "resnets" && m is 0 or 1 && VaeResnetToOriginal(p[4..]) is { } r) return ($"{coder}.mid.block_{m + 1}.{r}", false);
                if (p[2] == "attentions" && m == 0)
                {
                    string inner = Join(p, 4);
                    foreach (var (original, diffusers) in VaeAttentionParts)
                        if (inner.StartsWith(diffusers + ".", StringComparison.Ordinal) && inner[(diffusers.Length + 1)..] is "weight" or "bias")
                            return ($"{coder}.mid.attn_1.{original}{inner[diffusers.Length..]}", original != "norm" && inner.EndsWith(".weight", StringComparison.Ordinal));
                }
                return (null, false);
            case "down_blocks" when coder == "encoder" && IntAt(p, 2) is int i && p.Length >= 6:
                if (p[3] == "resnets" && IntAt(p, 4) is int j && VaeResnetToOriginal(p[5..]) is { } rd) return ($"encoder.down.{i}.block.{j}.{rd}", false);
                if (p[3] == "downsamplers" && p[4] == "0" && p.Length == 7 && p[5] == "conv") return ($"encoder.down.{i}.downsample.conv.{p[6]}", false);
                return (null, false);
            case "up_blocks" when coder == "decoder" && IntAt(p, 2) is int i && p.Length >= 6:
                int level = upBlocks - 1 - i;
                if (p[3] == "resnets" && IntAt(p, 4) is int ju && VaeResnetToOriginal(p[5..]) is { } ru) return ($"decoder.up.{level}.block.{ju}.{ru}", false);
                if (p[3] == "upsamplers" && p[4] == "0" && p.Length == 7 && p[5] == "conv") return ($"decoder.up.{level}.upsample.conv.{p[6]}", false);
                return (null, false);
        }
        return (null, false);
    }

    static string? VaeResnetToOriginal(string[] rest) =>
        rest.Length == 2 && rest[0] is "norm1" or "conv1" or "norm2" or "conv2" or "conv_shortcut"
            ? (rest[0] == "conv_shortcut" ? "nin_shortcut" : rest[0]) + "." + rest[1]
            : null;

    static void TextToOpenClip(ITensorSource source, List<string> keys, List<MappedTensor> result, List<string> unmapped)
    {
        var keySet = keys.ToHashSet(StringComparer.Ordinal);
        foreach (string key in keys)
        {
            switch (key)
            {
                case "text_model.embeddings.token_embedding.weight":
                    result.Add(Same(source, key, OpenClipPrefix + "token_embedding.weight", Shape(source, key))); continue;
                case PositionEmbeddingKey:
                    result.Add(Same(source, key, OpenClipPrefix + "positional_embedding", Shape(source, key))); continue;
                case "text_model.final_layer_norm.weight" or "text_model.final_layer_norm.bias":
                    result.Add(Same(source, key, OpenClipPrefix + "ln_final." + key.Split('.')[^1], Shape(source, key))); continue;
                case PositionIdsKey:
                    continue; // OpenCLIP has no such buffer.
            }
            var p = key.Split('.');
            if (!key.StartsWith("text_model.encoder.layers.", StringComparison.Ordinal) || IntAt(p, 3) is null || p.Length < 6)
            {
                unmapped.Add(key);
                continue;
            }
            if (p[4] == "self_attn") continue; // attention projections: below
            string inner = Join(p, 4), block = $"{OpenClipPrefix}transformer.resblocks.{p[3]}.";
            var part = OpenClipLayerParts.FirstOrDefault(x => inner == x.Diffusers + "." + p[^1] && p[^1] is "weight" or "bias");
            if (part.Original is not null) result.Add(Same(source, key, block + part.Original + "." + p[^1], Shape(source, key)));
            else unmapped.Add(key);
        }
        // q, k and v are stored as one [3H, …] projection in the original, in that order.
        foreach (string key in keys)
        {
            var p = key.Split('.');
            if (p.Length != 7 || p[4] != "self_attn" || IntAt(p, 3) is not int n || !key.StartsWith("text_model.encoder.layers.", StringComparison.Ordinal)) continue;
            if (p[6] is not ("weight" or "bias")) { unmapped.Add(key); continue; }
            if (p[5] is "out_proj")
            {
                result.Add(Same(source, key, $"{OpenClipPrefix}transformer.resblocks.{n}.attn.out_proj.{p[6]}", Shape(source, key)));
                continue;
            }
            if (p[5] != "q_proj")
            {
                // k and v travel with their q (above); without a q they cannot be fused and are reported.
                if (p[5] is not ("k_proj" or "v_proj") || !keySet.Contains(key.Replace($".{p[5]}.", ".q_proj."))) unmapped.Add(key);
                continue;
            }
            string[] parts = [key, key.Replace(".q_proj.", ".k_proj."), key.Replace(".q_proj.", ".v_proj.")];
            if (parts.Any(k => !keySet.Contains(k)))
            {
                unmapped.AddRange(parts.Where(keySet.Contains));
                continue;
            }
            var shapes = parts.Select(k => Shape(source, k)).ToArray();
            if (shapes.Any(s => !s.SequenceEqual(shapes[0])))
                throw new CheckpointLayoutException($"{source.Name}: {string.Join(", ", parts)} must have one shape to be fused into in_proj.");
            long[] fusedShape = [shapes[0][0] * 3, .. shapes[0][1..]];
            result.Add(new MappedTensor($"{OpenClipPrefix}transformer.resblocks.{n}.attn.in_proj_{p[6]}", fusedShape, string.Join(" + ", parts), () =>
            {
                using var q = source.Load(parts[0]);
                using var k = source.Load(parts[1]);
                using var v = source.Load(parts[2]);
                return cat([q, k, v], 0);
            }));
        }
    }
}
