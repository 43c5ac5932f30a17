using System.Text.RegularExpressions;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

#pragma warning disable CS1573 // only the parameters that need explaining get a <param> tag

namespace DiffII.Diffusion.Models;

#pragma warning disable IDE1006 // field names are the diffusers attribute names, because they become state-dict keys

/// <summary>diffusers' <c>UNetMidBlock2D</c> as the VAE builds it: resnet, then (single-head self-attention, resnet), no time embedding.</summary>
public sealed class UNetMidBlock2D : nn.Module<Tensor, Tensor>
{
    public readonly ModuleList<Attention>? attentions;
    public readonly ModuleList<ResnetBlock2D> resnets;

    public UNetMidBlock2D(int channels, int groups, double eps, bool addAttention, Device? device = null, ScalarType? dtype = null)
        : base(nameof(UNetMidBlock2D))
    {
        // Built in diffusers' order (resnet, attention, resnet) so seeded default init draws the same numbers.
        var first = new ResnetBlock2D(channels, channels, null, groups, eps, device: device, dtype: dtype);
        // attention_head_dim = channels, so one head; diffusers upcasts its softmax, so it runs in float32 here.
        if (addAttention)
            attentions = nn.ModuleList(new Attention(channels, null, heads: 1, headDim: channels, bias: true, upcastAttention: true,
                                                     normNumGroups: groups, eps: eps, residualConnection: true, device: device, dtype: dtype));
        resnets = nn.ModuleList(first, new ResnetBlock2D(channels, channels, null, groups, eps, device: device, dtype: dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].forward(input, null);
        if (attentions is not null) h = attentions[0].forward(h);
        h = resnets[1].forward(h, null);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>DownEncoderBlock2D</c>: resnets, then an optional stride-2 conv with asymmetric padding.</summary>
public sealed class DownEncoderBlock2D : nn.Module<Tensor, Tensor>
{
    public readonly ModuleList<ResnetBlock2D> resnets;
    public readonly ModuleList<Downsample2D>? downsamplers;

    public DownEncoderBlock2D(int numLayers, int inChannels, int outChannels, bool addDownsample, int groups, double eps,
                              Device? device = null, ScalarType? dtype = null) : base(nameof(DownEncoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, null, groups, eps, device: device, dtype: dtype)).ToArray());
        if (addDownsample) downsamplers = nn.ModuleList(new Downsample2D(outChannels, outChannels, padding: 0, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = input;
        foreach (var resnet in resnets) h = resnet.forward(h, null);
        if (downsamplers is not null)
            foreach (var down in downsamplers) h = down.call(h);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>UpDecoderBlock2D</c>: resnets, then an optional nearest ×2 upsample with conv.</summary>
public sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    public readonly ModuleList<ResnetBlock2D> resnets;
    public readonly ModuleList<Upsample2D>? upsamplers;

    public UpDecoderBlock2D(int numLayers, int inChannels, int outChannels, bool addUpsample, int groups, double eps,
                            Device? device = null, ScalarType? dtype = null) : base(nameof(UpDecoderBlock2D))
    {
        resnets = nn.ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, null, groups, eps, device: device, dtype: dtype)).ToArray());
        if (addUpsample) upsamplers = nn.ModuleList(new Upsample2D(outChannels, outChannels, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = input;
        foreach (var resnet in resnets) h = resnet.forward(h, null);
        if (upsamplers is not null)
            foreach (var up in upsamplers) h = up.forward(h);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' VAE <c>Encoder</c> (double_z): image → [B, 2·latent_channels, H/f, W/f] moments (before quant_conv).</summary>
public sealed class Encoder : nn.Module<Tensor, Tensor>
{
    const double Eps = 1e-6;
    public readonly Conv2d conv_in;
    public readonly ModuleList<DownEncoderBlock2D> down_blocks;
    public readonly UNetMidBlock2D mid_block;
    public readonly GroupNorm conv_norm_out;
    public readonly Conv2d conv_out;

    public Encoder(AutoencoderKLConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(Encoder))
    {
        var channels = config.BlockOutChannels;
        int groups = config.NormNumGroups;
        conv_in = nn.Conv2d(config.InChannels, channels[0], 3, stride: 1, padding: 1, device: device, dtype: dtype);
        var blocks = new List<DownEncoderBlock2D>();
        int outputChannel = channels[0];
        for (int i = 0; i < channels.Count; i++)
        {
            int inputChannel = outputChannel;
            outputChannel = channels[i];
            blocks.Add(new DownEncoderBlock2D(config.LayersPerBlock, inputChannel, outputChannel, i != channels.Count - 1, groups, Eps, device, dtype));
        }
        down_blocks = nn.ModuleList(blocks.ToArray());
        mid_block = new UNetMidBlock2D(channels[^1], groups, Eps, config.MidBlockAddAttention, device, dtype);
        conv_norm_out = NormLayers.GroupNorm(groups, channels[^1], Eps, device, dtype);
        conv_out = nn.Conv2d(channels[^1], 2 * config.LatentChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor image)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.Forward(image);
        foreach (var block in down_blocks) h = block.forward(h);
        h = mid_block.forward(h);
        h = conv_out.Forward(nn.functional.silu(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' VAE <c>Decoder</c>: latent (after post_quant_conv) → image.</summary>
public sealed class Decoder : nn.Module<Tensor, Tensor>
{
    const double Eps = 1e-6;
    public readonly Conv2d conv_in;
    public readonly UNetMidBlock2D mid_block;
    public readonly ModuleList<UpDecoderBlock2D> up_blocks;
    public readonly GroupNorm conv_norm_out;
    public readonly Conv2d conv_out;

    public Decoder(AutoencoderKLConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(Decoder))
    {
        var reversed = config.BlockOutChannels.Reverse().ToArray();
        int groups = config.NormNumGroups;
        conv_in = nn.Conv2d(config.LatentChannels, reversed[0], 3, stride: 1, padding: 1, device: device, dtype: dtype);
        mid_block = new UNetMidBlock2D(reversed[0], groups, Eps, config.MidBlockAddAttention, device, dtype);
        var blocks = new List<UpDecoderBlock2D>();
        int outputChannel = reversed[0];
        for (int i = 0; i < reversed.Length; i++)
        {
            int prevOutputChannel = outputChannel;
            outputChannel = reversed[i];
            blocks.Add(new UpDecoderBlock2D(config.LayersPerBlock + 1, prevOutputChannel, outputChannel, i != reversed.Length - 1, groups, Eps, device, dtype));
        }
        up_blocks = nn.ModuleList(blocks.ToArray());
        conv_norm_out = NormLayers.GroupNorm(groups, reversed[^1], Eps, device, dtype);
        conv_out = nn.Conv2d(reversed[^1], config.OutChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor latent)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.Forward(latent);
        h = mid_block.forward(h);
        // diffusers runs the up path in the up blocks' dtype (they may be kept in float32 when the rest is not).
        var upDtype = up_blocks.parameters().First().dtype;
        if (h.dtype != upDtype) h = h.to(upDtype);
        foreach (var block in up_blocks) h = block.forward(h);
        h = conv_out.Forward(nn.functional.silu(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers' <c>DiagonalGaussianDistribution</c> over latents: moments [B, 2C, h, w] split into mean and log-variance
/// (clamped to [−30, 20]). Owns its tensors; dispose it (or its dispose scope) when done.
/// </summary>
public sealed class DiagonalGaussianDistribution : IDisposable
{
    public DiagonalGaussianDistribution(Tensor moments)
    {
        if (moments.dim() != 4 || moments.shape[1] % 2 != 0)
            throw new ArgumentException($"Latent moments must be [B, 2C, H, W], got [{string.Join(", ", moments.shape)}].");
        using var scope = NewDisposeScope();
        var parts = moments.chunk(2, 1);
        Mean = parts[0].contiguous().MoveToOuterDisposeScope();
        LogVar = parts[1].Clamp(-30.0, 20.0).MoveToOuterDisposeScope();
        Std = LogVar.Mul(0.5).exp().MoveToOuterDisposeScope();
    }

    public Tensor Mean { get; }
    /// <summary>Log-variance after clamping to [−30, 20] (as diffusers stores it).</summary>
    public Tensor LogVar { get; }
    /// <summary>exp(0.5 · LogVar).</summary>
    public Tensor Std { get; }

    /// <summary>The most likely latent (the mean).</summary>
    public Tensor Mode() => Mean.alias();

    /// <summary>mean + std · ε with ε ~ N(0, 1) drawn from <paramref name="generator"/> (on the generator's device, then moved, like diffusers' randn_tensor).</summary>
    public Tensor Sample(Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        var noiseDevice = generator?.device ?? Mean.device;
        var noise = randn(Mean.shape, dtype: Mean.dtype, device: noiseDevice, generator: generator);
        if (noise.device_type != Mean.device_type || noise.device_index != Mean.device_index) noise = noise.to(Mean.device);
        return Mean.Add(Std * noise).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Mean.Dispose();
        LogVar.Dispose();
        Std.Dispose();
    }
}

/// <summary>
/// diffusers' <c>AutoencoderKL</c> (the Stable Diffusion VAE). <see cref="Encode"/> gives the latent distribution,
/// <see cref="Decode"/> the raw decoder output; neither applies <see cref="ScalingFactor"/>. State-dict keys equal diffusers'.
/// </summary>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    public readonly Encoder encoder;
    public readonly Decoder decoder;
    public readonly Conv2d? quant_conv;
    public readonly Conv2d? post_quant_conv;

    public AutoencoderKLConfig Config { get; }
    /// <summary>config scaling_factor: UNet latents are <c>Encode(x).Sample() · ScalingFactor</c>.</summary>
    public double ScalingFactor => Config.ScalingFactor;
    /// <summary>Image pixels per latent pixel along each side.</summary>
    public int DownscaleFactor => Config.DownscaleFactor;

    /// <param name="device">Where parameters are created; <c>torch.META</c> builds the structure without memory.</param>
    public AutoencoderKL(AutoencoderKLConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(AutoencoderKL))
    {
        config.Validate();
        Config = config;
        encoder = new Encoder(config, device, dtype);
        decoder = new Decoder(config, device, dtype);
        int latent = config.LatentChannels;
        if (config.UseQuantConv) quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1, device: device, dtype: dtype);
        if (config.UsePostQuantConv) post_quant_conv = nn.Conv2d(latent, latent, 1, device: device, dtype: dtype);
        RegisterComponents();
        this.DetachFromDisposeScopes();
    }

    public static AutoencoderKL FromConfigFile(string configPath, Device? device = null, ScalarType? dtype = null) =>
        new(AutoencoderKLConfig.FromFile(configPath), device, dtype);

    /// <param name="image">[B, in_channels, H, W] in [−1, 1]; H and W multiples of <see cref="DownscaleFactor"/>.</param>
    public DiagonalGaussianDistribution Encode(Tensor image)
    {
        if (image.dim() != 4 || image.shape[1] != Config.InChannels)
            throw new ArgumentException($"AutoencoderKL.Encode expects an image [B, {Config.InChannels}, H, W], got [{string.Join(", ", image.shape)}].");
        using var scope = NewDisposeScope();
        var moments = encoder.forward(image);
        if (quant_conv is not null) moments = quant_conv.Forward(moments);
        var distribution = new DiagonalGaussianDistribution(moments);
        scope.MoveToOuter(distribution.Mean, distribution.LogVar, distribution.Std);
        return distribution;
    }

    /// <param name="latent">[B, latent_channels, h, w], already divided by <see cref="ScalingFactor"/>.</param>
    /// <returns>[B, out_channels, h·f, w·f], raw (roughly [−1, 1], not clamped).</returns>
    public Tensor Decode(Tensor latent)
    {
        if (latent.dim() != 4 || latent.shape[1] != Config.LatentChannels)
            throw new ArgumentException($"AutoencoderKL.Decode expects a latent [B, {Config.LatentChannels}, h, w], got [{string.Join(", ", latent.shape)}].");
        using var scope = NewDisposeScope();
        var z = post_quant_conv is null ? latent : post_quant_conv.Forward(latent);
        return decoder.forward(z).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction through the posterior mean (diffusers' forward with sample_posterior=False).</summary>
    public override Tensor forward(Tensor image)
    {
        using var distribution = Encode(image);
        return Decode(distribution.Mean);
    }

    static readonly Regex LegacyAttentionKey = new(@"^(.*\.attentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Maps a pre-0.17 diffusers VAE key (mid-block attention <c>query/key/value/proj_attn</c>) to the current name
    /// (<c>to_q/to_k/to_v/to_out.0</c>); any other key is returned unchanged.
    /// </summary>
    public static string UpgradeLegacyKey(string key)
    {
        var match = LegacyAttentionKey.Match(key);
        if (!match.Success) return key;
        string name = match.Groups[2].Value switch
        {
            "query" => "to_q",
            "key" => "to_k",
            "value" => "to_v",
            _ => "to_out.0",
        };
        return $"{match.Groups[1].Value}{name}.{match.Groups[3].Value}";
    }

    /// <summary>A view of <paramref name="source"/> with pre-0.17 attention names upgraded (current names pass through).</summary>
    public static ITensorSource UpgradeLegacyKeys(ITensorSource source) => new RenamedTensorSource(source, UpgradeLegacyKey);

    /// <summary>Strictly loads diffusers-layout VAE weights, accepting old or new attention names.</summary>
    public int LoadWeights(ITensorSource source) => StateDictLoader.Load(this, UpgradeLegacyKeys(source));

    /// <summary>Strictly loads a diffusers VAE <c>diffusion_pytorch_model.safetensors</c>, accepting old or new attention names.</summary>
    public int LoadWeights(string safetensorsPath)
    {
        using var file = SafeTensorsFile.Open(safetensorsPath);
        return LoadWeights(new SafeTensorsSource(file));
    }
}

/// <summary>A tensor source whose keys are renamed by a function; two source keys mapping to one name is an error naming both.</summary>
public sealed class RenamedTensorSource : ITensorSource
{
    readonly ITensorSource _inner;
    readonly Dictionary<string, string> _toSourceKey = new(StringComparer.Ordinal);

    public RenamedTensorSource(ITensorSource inner, Func<string, string> rename)
    {
        _inner = inner;
        foreach (var key in inner.Keys)
        {
            string renamed = rename(key);
            if (_toSourceKey.TryGetValue(renamed, out var other))
                throw new CheckpointMismatchException($"{inner.Name}: keys '{other}' and '{key}' both stand for '{renamed}'.");
            _toSourceKey.Add(renamed, key);
        }
    }

    public string Name => _inner.Name;
    public IEnumerable<string> Keys => _toSourceKey.Keys;
    public bool TryGetShape(string key, out long[] shape)
    {
        if (_toSourceKey.TryGetValue(key, out var sourceKey)) return _inner.TryGetShape(sourceKey, out shape);
        shape = [];
        return false;
    }
    public Tensor Load(string key) => _inner.Load(_toSourceKey.TryGetValue(key, out var sourceKey) ? sourceKey : key);
}
