using DiffII.Diffusion.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

#pragma warning disable CS1573 // only the parameters that need explaining get a <param> tag

namespace DiffII.Diffusion.Models;

#pragma warning disable IDE1006 // field names are the diffusers attribute names, because they become state-dict keys

/// <summary>
/// diffusers' <c>ResnetBlock2D</c> (time_embedding_norm "default", SiLU): GroupNorm → SiLU → conv → (+ time embedding)
/// → GroupNorm → SiLU → dropout → conv, added to the input (1×1 conv shortcut when channels change), divided by
/// the output scale factor. The VAE builds it without a time embedding.
/// </summary>
public sealed class ResnetBlock2D : nn.Module
{
    public readonly GroupNorm norm1;
    public readonly Conv2d conv1;
    public readonly Linear? time_emb_proj;
    public readonly GroupNorm norm2;
    public readonly Dropout dropout;
    public readonly Conv2d conv2;
    public readonly Conv2d? conv_shortcut;
    readonly double _outputScaleFactor;

    public ResnetBlock2D(int inChannels, int outChannels, int? tembChannels, int groups, double eps, double dropout = 0.0,
                         double outputScaleFactor = 1.0, Device? device = null, ScalarType? dtype = null)
        : base(nameof(ResnetBlock2D))
    {
        _outputScaleFactor = outputScaleFactor;
        norm1 = NormLayers.GroupNorm(groups, inChannels, eps, device, dtype);
        conv1 = nn.Conv2d(inChannels, outChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        if (tembChannels is int temb) time_emb_proj = nn.Linear(temb, outChannels, device: device, dtype: dtype);
        norm2 = NormLayers.GroupNorm(groups, outChannels, eps, device, dtype);
        this.dropout = nn.Dropout(dropout);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        if (inChannels != outChannels) conv_shortcut = nn.Conv2d(inChannels, outChannels, 1, stride: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public Tensor forward(Tensor input, Tensor? temb)
    {
        using var scope = NewDisposeScope();
        var h = conv1.Forward(nn.functional.silu(norm1.call(input)));
        if (time_emb_proj is not null)
        {
            if (temb is null) throw new ArgumentException("This ResnetBlock2D was built with a time embedding projection, but no time embedding was given.");
            var t = time_emb_proj.call(nn.functional.silu(temb));
            h = h.Add(t.unsqueeze(-1).unsqueeze(-1));
        }
        h = conv2.Forward(dropout.call(nn.functional.silu(norm2.call(h))));
        var shortcut = conv_shortcut is null ? input : conv_shortcut.Forward(input);
        var output = shortcut.Add(h);
        if (_outputScaleFactor != 1.0) output = output.Div(_outputScaleFactor);
        return output.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>Downsample2D</c> with a stride-2 3×3 conv; padding 0 means an asymmetric (right/bottom) zero pad first.</summary>
public sealed class Downsample2D : nn.Module<Tensor, Tensor>
{
    public readonly Conv2d conv;
    readonly int _padding;

    public Downsample2D(int channels, int outChannels, int padding, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Downsample2D))
    {
        _padding = padding;
        conv = nn.Conv2d(channels, outChannels, 3, stride: 2, padding: padding, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        if (_padding != 0) return conv.Forward(input);
        using var padded = nn.functional.pad(input, [0, 1, 0, 1], PaddingModes.Constant, 0);
        return conv.Forward(padded);
    }
}

/// <summary>diffusers' <c>Upsample2D</c>: nearest ×2 (or to an explicit size), then a 3×3 conv.</summary>
public sealed class Upsample2D : nn.Module
{
    public readonly Conv2d conv;

    public Upsample2D(int channels, int outChannels, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Upsample2D))
    {
        conv = nn.Conv2d(channels, outChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <param name="outputSize">Target [H, W] when the skip connection is not exactly twice the size (odd inputs).</param>
    public Tensor forward(Tensor input, long[]? outputSize = null)
    {
        using var upsampled = outputSize is null
            ? nn.functional.interpolate(input, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest)
            : nn.functional.interpolate(input, size: outputSize, mode: InterpolationMode.Nearest);
        return conv.Forward(upsampled);
    }
}

/// <summary>diffusers' <c>Timesteps</c>: sinusoidal embedding of (possibly fractional) timesteps, computed in float32.</summary>
public sealed class Timesteps : nn.Module<Tensor, Tensor>
{
    readonly int _numChannels;
    readonly bool _flipSinToCos;
    readonly double _downscaleFreqShift;

    public Timesteps(int numChannels, bool flipSinToCos, double downscaleFreqShift) : base(nameof(Timesteps))
    {
        _numChannels = numChannels;
        _flipSinToCos = flipSinToCos;
        _downscaleFreqShift = downscaleFreqShift;
        RegisterComponents();
    }

    /// <param name="timesteps">[N] timesteps.</param>
    /// <returns>[N, numChannels] float32.</returns>
    public override Tensor forward(Tensor timesteps)
    {
        if (timesteps.dim() != 1) throw new ArgumentException($"Timesteps expects a 1-D tensor, got [{string.Join(", ", timesteps.shape)}].");
        using var scope = NewDisposeScope();
        int half = _numChannels / 2;
        var exponent = KeptScalars.Arange(0, half, ScalarType.Float32, timesteps.device).Mul(-Math.Log(10000.0));
        exponent = exponent.Div(half - _downscaleFreqShift);
        var angles = timesteps.unsqueeze(1).to(ScalarType.Float32) * exponent.exp().unsqueeze(0);
        var emb = _flipSinToCos ? cat([angles.cos(), angles.sin()], -1) : cat([angles.sin(), angles.cos()], -1);
        if (_numChannels % 2 == 1) emb = nn.functional.pad(emb, [0, 1, 0, 0]);
        return emb.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>TimestepEmbedding</c>: linear → SiLU → linear.</summary>
public sealed class TimestepEmbedding : nn.Module<Tensor, Tensor>
{
    public readonly Linear linear_1;
    public readonly Linear linear_2;

    public TimestepEmbedding(int inChannels, int timeEmbedDim, Device? device = null, ScalarType? dtype = null) : base(nameof(TimestepEmbedding))
    {
        linear_1 = nn.Linear(inChannels, timeEmbedDim, device: device, dtype: dtype);
        linear_2 = nn.Linear(timeEmbedDim, timeEmbedDim, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var h = linear_1.call(input);
        using var a = nn.functional.silu(h);
        return linear_2.call(a);
    }
}

/// <summary>diffusers' <c>GEGLU</c>: one projection to twice the width, split into value and gate, value · GELU(gate) (exact erf GELU).</summary>
public sealed class GEGLU : nn.Module<Tensor, Tensor>
{
    public readonly Linear proj;

    public GEGLU(int dimIn, int dimOut, Device? device = null, ScalarType? dtype = null) : base(nameof(GEGLU))
    {
        proj = nn.Linear(dimIn, dimOut * 2, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var parts = proj.call(input).chunk(2, -1);
        return (parts[0] * nn.functional.gelu(parts[1])).MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>FeedForward</c> with GEGLU (mult 4): <c>net</c> = [GEGLU, Dropout, Linear].</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    public readonly ModuleList<nn.Module<Tensor, Tensor>> net;

    public FeedForward(int dim, int mult = 4, double dropout = 0.0, Device? device = null, ScalarType? dtype = null) : base(nameof(FeedForward))
    {
        int inner = dim * mult;
        net = nn.ModuleList<nn.Module<Tensor, Tensor>>(
            new GEGLU(dim, inner, device, dtype),
            nn.Dropout(dropout),
            nn.Linear(inner, dim, device: device, dtype: dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = input;
        foreach (var layer in net) h = layer.call(h);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers' <c>BasicTransformerBlock</c> (layer_norm, GEGLU, no attention bias): self-attention, cross-attention
/// and feed-forward, each pre-LayerNorm with a residual add.
/// </summary>
public sealed class BasicTransformerBlock : nn.Module
{
    public readonly LayerNorm norm1;
    public readonly Attention attn1;
    public readonly LayerNorm norm2;
    public readonly Attention attn2;
    public readonly LayerNorm norm3;
    public readonly FeedForward ff;

    public BasicTransformerBlock(int dim, int heads, int headDim, int crossAttentionDim, bool upcastAttention, double dropout = 0.0,
                                 Device? device = null, ScalarType? dtype = null) : base(nameof(BasicTransformerBlock))
    {
        norm1 = nn.LayerNorm(dim, 1e-5, elementwise_affine: true, device: device, dtype: dtype);
        attn1 = new Attention(dim, null, heads, headDim, bias: false, upcastAttention: upcastAttention, dropout: dropout, device: device, dtype: dtype);
        norm2 = nn.LayerNorm(dim, 1e-5, elementwise_affine: true, device: device, dtype: dtype);
        attn2 = new Attention(dim, crossAttentionDim, heads, headDim, bias: false, upcastAttention: upcastAttention, dropout: dropout, device: device, dtype: dtype);
        norm3 = nn.LayerNorm(dim, 1e-5, elementwise_affine: true, device: device, dtype: dtype);
        ff = new FeedForward(dim, dropout: dropout, device: device, dtype: dtype);
        RegisterComponents();
    }

    public Tensor forward(Tensor hiddenStates, Tensor encoderHiddenStates)
    {
        using var scope = NewDisposeScope();
        var h = attn1.forward(norm1.call(hiddenStates)).Add(hiddenStates);
        h = attn2.forward(norm2.call(h), encoderHiddenStates).Add(h);
        h = ff.forward(norm3.call(h)).Add(h);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A 1×1 convolution applied to tokens, [B, N, C_in] → [B, N, C_out], as one matrix product. It holds the conv's own
/// parameters (weight [C_out, C_in, 1, 1] and bias), so state-dict keys, shapes and seeded initialisation are those of
/// the <c>nn.Conv2d</c> it stands for. Why not the conv itself: libtorch's CPU convolution runs a 1×1 conv several
/// times slower than the same product as a linear (bench/ measures both), and Transformer2DModel wants tokens anyway.
/// </summary>
public sealed class PointwiseConv2d : nn.Module<Tensor, Tensor>
{
    public readonly Parameter weight;
    public readonly Parameter? bias;

    public PointwiseConv2d(int inChannels, int outChannels, bool hasBias = true, Device? device = null, ScalarType? dtype = null)
        : base(nameof(PointwiseConv2d))
    {
        // Built as a real Conv2d first, so default initialisation draws exactly what nn.Conv2d would.
        using var conv = nn.Conv2d(inChannels, outChannels, 1, stride: 1, bias: hasBias, device: device, dtype: dtype);
        using (no_grad())
        {
            weight = new Parameter(conv.weight!.detach().clone());
            if (hasBias) bias = new Parameter(conv.bias!.detach().clone());
        }
        RegisterComponents();
    }

    public long InChannels => weight.shape[1];
    public long OutChannels => weight.shape[0];

    /// <param name="input">[..., C_in] tokens.</param>
    public override Tensor forward(Tensor input)
    {
        if (input.shape[^1] != InChannels)
            throw new ArgumentException($"PointwiseConv2d expects {InChannels} channels last, got [{string.Join(", ", input.shape)}].");
        using var matrix = weight.flatten(1);
        return nn.functional.linear(input, matrix, bias);
    }
}

/// <summary>
/// diffusers' <c>Transformer2DModel</c> for continuous (feature-map) input: GroupNorm (eps 1e-6) → proj_in (1×1 conv,
/// or linear when use_linear_projection) → transformer blocks → proj_out → + input. Both projection kinds run on the
/// flattened tokens (the 1×1 conv as <see cref="PointwiseConv2d"/>), which is the same arithmetic as diffusers' conv
/// path without its layout round trips.
/// </summary>
public sealed class Transformer2DModel : nn.Module
{
    public readonly GroupNorm norm;
    public readonly nn.Module<Tensor, Tensor> proj_in;
    public readonly ModuleList<BasicTransformerBlock> transformer_blocks;
    public readonly nn.Module<Tensor, Tensor> proj_out;

    public Transformer2DModel(int heads, int headDim, int inChannels, int numLayers, int crossAttentionDim, int normNumGroups,
                              bool useLinearProjection, bool upcastAttention, double dropout = 0.0, Device? device = null, ScalarType? dtype = null)
        : base(nameof(Transformer2DModel))
    {
        int inner = heads * headDim;
        norm = NormLayers.GroupNorm(normNumGroups, inChannels, 1e-6, device, dtype);
        proj_in = useLinearProjection
            ? nn.Linear(inChannels, inner, device: device, dtype: dtype)
            : new PointwiseConv2d(inChannels, inner, device: device, dtype: dtype);
        transformer_blocks = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(_ => new BasicTransformerBlock(inner, heads, headDim, crossAttentionDim, upcastAttention, dropout, device, dtype)).ToArray());
        proj_out = useLinearProjection
            ? nn.Linear(inner, inChannels, device: device, dtype: dtype)
            : new PointwiseConv2d(inner, inChannels, device: device, dtype: dtype);
        RegisterComponents();
    }

    public Tensor forward(Tensor hiddenStates, Tensor encoderHiddenStates)
    {
        using var scope = NewDisposeScope();
        long batch = hiddenStates.shape[0], height = hiddenStates.shape[2], width = hiddenStates.shape[3];
        var h = norm.call(hiddenStates);
        h = proj_in.call(h.permute(0, 2, 3, 1).reshape(batch, height * width, -1));
        foreach (var block in transformer_blocks) h = block.forward(h, encoderHiddenStates);
        h = proj_out.call(h).reshape(batch, height, width, -1).permute(0, 3, 1, 2);
        // The input first, so the sum takes its contiguous NCHW layout rather than the permuted view's.
        return hiddenStates.Add(h).MoveToOuterDisposeScope();
    }
}

/// <summary>Normalisation layers initialised the way PyTorch initialises them.</summary>
static class NormLayers
{
    /// <summary>
    /// An affine GroupNorm with weight 1 and bias 0. TorchSharp 0.107's nn.GroupNorm leaves both uninitialised
    /// (torch.empty), which would give garbage or NaN in any model not fully loaded from a checkpoint.
    /// </summary>
    public static GroupNorm GroupNorm(int numGroups, int numChannels, double eps, Device? device, ScalarType? dtype)
    {
        var norm = nn.GroupNorm(numGroups, numChannels, eps, affine: true, device: device, dtype: dtype);
        using (no_grad())
        {
            nn.init.ones_(norm.weight);
            nn.init.zeros_(norm.bias!);
        }
        return norm;
    }
}
