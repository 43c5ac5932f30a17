using DiffII.Diffusion.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

#pragma warning disable CS1573 // only the parameters that need explaining get a <param> tag

namespace DiffII.Diffusion.Models;

#pragma warning disable IDE1006 // field names are the diffusers attribute names, because they become state-dict keys

/// <summary>
/// diffusers' <c>Attention</c> with its default processor: self-attention (attn1, VAE mid-block) or cross-attention
/// (attn2), optional input GroupNorm, residual connection and output rescaling, computed with
/// scaled_dot_product_attention. State-dict keys: <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c>
/// (<c>to_out.1</c> is a parameterless Dropout), <c>group_norm</c> when present.
/// </summary>
public sealed class Attention : nn.Module
{
    public readonly GroupNorm? group_norm;
    public readonly Linear to_q;
    public readonly Linear to_k;
    public readonly Linear to_v;
    public readonly ModuleList<nn.Module<Tensor, Tensor>> to_out;

    /// <summary>Number of attention heads.</summary>
    public int Heads { get; }
    /// <summary>Channels per head.</summary>
    public int HeadDim { get; }
    /// <summary>Input (and output) features of the query stream: in-features of to_q, out-features of to_out.0.</summary>
    public int QueryDim { get; }
    /// <summary>In-features of to_k and to_v (the text-encoder width for cross-attention).</summary>
    public int KeyValueInputDim { get; }
    /// <summary>Heads × head dim: out-features of to_q/to_k/to_v, in-features of to_out.0.</summary>
    public int InnerDim { get; }
    /// <summary>True when keys and values come from encoder hidden states (attn2).</summary>
    public bool IsCrossAttention { get; }
    /// <summary>Attention is computed in float32 whatever the model dtype (diffusers' upcast_attention/upcast_softmax).</summary>
    public bool UpcastAttention { get; }
    public bool ResidualConnection { get; }
    public double RescaleOutputFactor { get; }

    /// <summary>Optional projection corrections (LoRA). Not a registered module: it never changes state-dict keys.</summary>
    public AttentionAdapters? Adapters { get; set; }

    /// <param name="queryDim">Channels of the query stream.</param>
    /// <param name="crossAttentionDim">Channels of the encoder states for cross-attention; null for self-attention.</param>
    /// <param name="normNumGroups">When set, a GroupNorm (with <paramref name="eps"/>) is applied to the input first (VAE mid-block).</param>
    public Attention(int queryDim, int? crossAttentionDim, int heads, int headDim, bool bias, bool outBias = true,
                     bool upcastAttention = false, int? normNumGroups = null, double eps = 1e-5, bool residualConnection = false,
                     double rescaleOutputFactor = 1.0, double dropout = 0.0, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Attention))
    {
        Heads = heads;
        HeadDim = headDim;
        QueryDim = queryDim;
        InnerDim = heads * headDim;
        IsCrossAttention = crossAttentionDim is not null;
        KeyValueInputDim = crossAttentionDim ?? queryDim;
        UpcastAttention = upcastAttention;
        ResidualConnection = residualConnection;
        RescaleOutputFactor = rescaleOutputFactor;

        if (normNumGroups is int groups) group_norm = NormLayers.GroupNorm(groups, queryDim, eps, device, dtype);
        to_q = nn.Linear(queryDim, InnerDim, hasBias: bias, device: device, dtype: dtype);
        to_k = nn.Linear(KeyValueInputDim, InnerDim, hasBias: bias, device: device, dtype: dtype);
        to_v = nn.Linear(KeyValueInputDim, InnerDim, hasBias: bias, device: device, dtype: dtype);
        to_out = nn.ModuleList<nn.Module<Tensor, Tensor>>(
            nn.Linear(InnerDim, queryDim, hasBias: outBias, device: device, dtype: dtype),
            nn.Dropout(dropout));
        RegisterComponents();
    }

    /// <param name="hiddenStates">[B, N, queryDim] tokens, or [B, queryDim, H, W] feature maps (VAE mid-block).</param>
    /// <param name="encoderHiddenStates">[B, M, crossAttentionDim] for cross-attention; null for self-attention.</param>
    public Tensor forward(Tensor hiddenStates, Tensor? encoderHiddenStates = null)
    {
        using var scope = NewDisposeScope();
        var residual = hiddenStates;
        bool spatial = hiddenStates.dim() == 4;
        long batch = hiddenStates.shape[0], channels = hiddenStates.shape[1], height = 0, width = 0;
        if (spatial)
        {
            height = hiddenStates.shape[2];
            width = hiddenStates.shape[3];
            hiddenStates = hiddenStates.view(batch, channels, height * width).transpose(1, 2);
        }
        else if (hiddenStates.dim() != 3)
            throw new ArgumentException($"Attention expects [B, N, C] or [B, C, H, W] hidden states, got [{string.Join(", ", hiddenStates.shape)}].");
        if (hiddenStates.shape[^1] != QueryDim)
            throw new ArgumentException($"Attention expects {QueryDim} query channels, got [{string.Join(", ", residual.shape)}].");
        if (encoderHiddenStates is not null && (encoderHiddenStates.dim() != 3 || encoderHiddenStates.shape[2] != KeyValueInputDim || encoderHiddenStates.shape[0] != batch))
            throw new ArgumentException($"Attention expects encoder hidden states [{batch}, M, {KeyValueInputDim}], got [{string.Join(", ", encoderHiddenStates.shape)}].");

        if (group_norm is not null) hiddenStates = group_norm.call(hiddenStates.transpose(1, 2)).transpose(1, 2);
        var context = encoderHiddenStates ?? hiddenStates;
        var adapters = Adapters;

        var query = SplitHeads(Project(to_q, adapters?.Q, hiddenStates, adapters));
        var key = SplitHeads(Project(to_k, adapters?.K, context, adapters));
        var value = SplitHeads(Project(to_v, adapters?.V, context, adapters));

        var dtype = query.dtype;
        if (UpcastAttention && dtype != ScalarType.Float32)
        {
            query = query.to(ScalarType.Float32);
            key = key.to(ScalarType.Float32);
            value = value.to(ScalarType.Float32);
        }
        // SDPA's default scale is 1/sqrt(head dim), which is diffusers' scale_qk.
        var attended = nn.functional.scaled_dot_product_attention(query, key, value);
        if (attended.dtype != dtype) attended = attended.to(dtype);
        attended = attended.transpose(1, 2).reshape(batch, -1, InnerDim);

        var output = Project((Linear)to_out[0], adapters?.Out, attended, adapters);
        output = to_out[1].call(output);
        if (spatial) output = output.transpose(-1, -2).reshape(batch, channels, height, width);
        if (ResidualConnection) output = output.Add(residual);
        if (RescaleOutputFactor != 1.0) output = output.Div(RescaleOutputFactor);
        return output.MoveToOuterDisposeScope();
    }

    static Tensor Project(Linear projection, IProjectionAdapter? adapter, Tensor input, AttentionAdapters? adapters)
    {
        var output = projection.call(input);
        if (adapter is null) return output;
        var delta = adapter.Delta(input);
        return adapters!.Scale == 1.0 ? output.Add(delta) : output.Add(delta.Mul(adapters.Scale));
    }

    Tensor SplitHeads(Tensor x) => x.view(x.shape[0], x.shape[1], Heads, HeadDim).transpose(1, 2);
}
