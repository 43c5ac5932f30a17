using DiffII.Diffusion.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>Where counted FLOPs come from. Norms, activations, additions and copies are not counted (a few % of the total).</summary>
public enum FlopCategory { Convolution, Linear, AttentionMatmul }

/// <summary>FLOPs of the layers that dominate Stable Diffusion, one multiply-add = 2 FLOPs, biases left out.</summary>
public static class FlopFormulas
{
    /// <summary>2 · (C_in / groups) · k_h · k_w · C_out · H_out · W_out per sample.</summary>
    public static long Conv2d(long batch, long inChannels, long outChannels, long groups, long kernelH, long kernelW, long outH, long outW)
    {
        if (groups <= 0 || inChannels % groups != 0) throw new ArgumentException($"{inChannels} input channels cannot be split into {groups} groups.");
        return 2 * batch * (inChannels / groups) * kernelH * kernelW * outChannels * outH * outW;
    }

    /// <summary>2 · in · out per token.</summary>
    public static long Linear(long tokens, long inFeatures, long outFeatures) => 2 * tokens * inFeatures * outFeatures;

    /// <summary>
    /// The two matmuls of attention, Q·Kᵀ and softmax·V: each heads · L_q · L_k · head_dim multiply-adds, so
    /// 2 · 2 · heads · L_q · L_k · head_dim = 4 · L_q · L_k · (heads · head_dim) per sample. A causal mask (CLIP) is
    /// counted as the full product, as is conventional.
    /// </summary>
    public static long Attention(long batch, long heads, long queryLength, long keyLength, long headDim) =>
        4 * batch * heads * queryLength * keyLength * headDim;
}

/// <summary>
/// Counts the FLOPs of every forward pass through the given modules, from the shapes the layers really see: forward
/// hooks on every Conv2d, Linear and PointwiseConv2d (a 1×1 conv run on tokens), and on the query and key projections of every attention (diffusers-style
/// <see cref="Attention"/> and CLIP's <see cref="ClipAttention"/>) for the attention matmuls. Dispose removes the hooks.
/// </summary>
public sealed class FlopCounter : IDisposable
{
    // The hooks' remove actions.
    readonly List<Action> _hooks = [];
    readonly Dictionary<FlopCategory, long> _totals = Enum.GetValues<FlopCategory>().ToDictionary(c => c, _ => 0L);
    // The query projection's output of the attention in progress: its key projection comes next and completes the count.
    (long Batch, long QueryLength, long Inner)? _pendingQuery;

    public FlopCounter(params nn.Module[] roots)
    {
        foreach (var root in roots)
            foreach (var (_, module) in WithRoot(root))
            {
                switch (module)
                {
                    case Conv2d conv:
                        _hooks.Add(conv.register_forward_hook((m, _, output) => { Add(FlopCategory.Convolution, ConvFlops((Conv2d)m, output)); return output; }).remove);
                        break;
                    case Linear linear:
                        _hooks.Add(linear.register_forward_hook((m, input, output) => { Add(FlopCategory.Linear, LinearFlops((Linear)m, input)); return output; }).remove);
                        break;
                    case PointwiseConv2d pointwise:
                        _hooks.Add(pointwise.register_forward_hook((m, input, output) => { Add(FlopCategory.Convolution, PointwiseFlops((PointwiseConv2d)m, input)); return output; }).remove);
                        break;
                    case Attention attention:
                        HookAttention(attention.to_q, attention.to_k, attention.Heads);
                        break;
                    case ClipAttention clip:
                        HookAttention(clip.q_proj, clip.k_proj, heads: 1);
                        break;
                }
            }
    }

    /// <summary>The module and all its descendants (TorchSharp's named_modules leaves the module itself out).</summary>
    internal static IEnumerable<(string Name, nn.Module Module)> WithRoot(nn.Module root) =>
        new[] { ("", root) }.Concat(root.named_modules().Select(m => (m.name, m.module)));

    public long Total => _totals.Values.Sum();
    public IReadOnlyDictionary<FlopCategory, long> ByCategory => _totals;

    public void Reset()
    {
        foreach (var c in _totals.Keys.ToList()) _totals[c] = 0;
        _pendingQuery = null;
    }

    void Add(FlopCategory category, long flops) => _totals[category] += flops;

    void HookAttention(Linear query, Linear key, long heads)
    {
        _hooks.Add(query.register_forward_hook((_, _, output) =>
        {
            _pendingQuery = (output.shape[0], output.shape[1], output.shape[^1]);
            return output;
        }).remove);
        _hooks.Add(key.register_forward_hook((_, _, output) =>
        {
            if (_pendingQuery is { } q && q.Inner % heads == 0)
                Add(FlopCategory.AttentionMatmul, FlopFormulas.Attention(q.Batch, heads, q.QueryLength, output.shape[1], q.Inner / heads));
            _pendingQuery = null;
            return output;
        }).remove);
    }

    internal static long ConvFlops(Conv2d conv, Tensor output)
    {
        var w = conv.weight!.shape; // [C_out, C_in / groups, k_h, k_w]
        long batch = output.dim() == 4 ? output.shape[0] : 1;
        long outH = output.shape[^2], outW = output.shape[^1];
        return 2 * batch * w[1] * w[2] * w[3] * w[0] * outH * outW;
    }

    /// <summary>A 1×1 conv on tokens: 2 · C_in · C_out per token.</summary>
    internal static long PointwiseFlops(PointwiseConv2d conv, Tensor input) =>
        FlopFormulas.Linear(input.numel() / conv.InChannels, conv.InChannels, conv.OutChannels);

    internal static long LinearFlops(Linear linear, Tensor input)
    {
        var w = linear.weight!.shape; // [out, in]
        long tokens = input.numel() / w[1];
        return FlopFormulas.Linear(tokens, w[1], w[0]);
    }

    public void Dispose()
    {
        foreach (var remove in _hooks) remove();
        _hooks.Clear();
    }
}
