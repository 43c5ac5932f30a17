using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

#pragma warning disable CS1573 // only the parameters that need explaining get a <param> tag

namespace DiffII.Diffusion.Models;

#pragma warning disable IDE1006 // field names are the diffusers attribute names, because they become state-dict keys

/// <summary>A U-Net down block: returns the block output and the skip tensors it hands to the up path (one per ResNet, one per downsampler).</summary>
public abstract class UNetDownBlock(string name) : nn.Module(name)
{
    public abstract (Tensor Output, Tensor[] Skips) forward(Tensor hiddenStates, Tensor temb, Tensor encoderHiddenStates);
}

/// <summary>A U-Net up block: consumes one skip tensor per ResNet, last first.</summary>
public abstract class UNetUpBlock(string name) : nn.Module(name)
{
    public abstract int NumResnets { get; }
    /// <param name="skips">This block's skip tensors in the order they were produced; used from the end.</param>
    /// <param name="upsampleSize">Target [H, W] of the upsampler when it is not exactly ×2.</param>
    public abstract Tensor forward(Tensor hiddenStates, IReadOnlyList<Tensor> skips, Tensor temb, Tensor encoderHiddenStates, long[]? upsampleSize);
}

/// <summary>diffusers' <c>CrossAttnDownBlock2D</c> (resnets + Transformer2DModel attentions, optional downsampler) and <c>DownBlock2D</c> (no attentions).</summary>
public sealed class CrossAttnDownBlock2D : UNetDownBlock
{
    public readonly ModuleList<ResnetBlock2D> resnets;
    public readonly ModuleList<Transformer2DModel>? attentions;
    public readonly ModuleList<Downsample2D>? downsamplers;

    internal CrossAttnDownBlock2D(string name, bool withAttention, int numLayers, int inChannels, int outChannels, int tembChannels, bool addDownsample,
                                  UNet2DConditionConfig config, int heads, int crossAttentionDim, int transformerLayers, Device? device, ScalarType? dtype)
        : base(name)
    {
        int groups = config.NormNumGroups!.Value;
        // Built in diffusers' order (resnet, attention, resnet, ...) so seeded default init draws the same numbers.
        var resnetList = new List<ResnetBlock2D>();
        var attentionList = new List<Transformer2DModel>();
        for (int i = 0; i < numLayers; i++)
        {
            resnetList.Add(new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, tembChannels, groups, config.NormEps, config.Dropout, 1.0, device, dtype));
            if (withAttention)
                attentionList.Add(new Transformer2DModel(heads, outChannels / heads, outChannels, transformerLayers, crossAttentionDim, groups,
                                                         config.UseLinearProjection, config.UpcastAttention, config.Dropout, device, dtype));
        }
        resnets = nn.ModuleList(resnetList.ToArray());
        if (withAttention) attentions = nn.ModuleList(attentionList.ToArray());
        if (addDownsample)
            downsamplers = nn.ModuleList(new Downsample2D(outChannels, outChannels, config.DownsamplePadding, device, dtype));
        RegisterComponents();
    }

    public override (Tensor Output, Tensor[] Skips) forward(Tensor hiddenStates, Tensor temb, Tensor encoderHiddenStates)
    {
        var skips = new List<Tensor>();
        var h = hiddenStates;
        for (int i = 0; i < resnets.Count; i++)
        {
            h = resnets[i].forward(h, temb);
            if (attentions is not null) h = attentions[i].forward(h, encoderHiddenStates);
            skips.Add(h);
        }
        if (downsamplers is not null)
        {
            foreach (var down in downsamplers) h = down.call(h);
            skips.Add(h);
        }
        return (h, skips.ToArray());
    }
}

/// <summary>diffusers' <c>CrossAttnUpBlock2D</c> (resnets on [h, skip] + attentions, optional upsampler) and <c>UpBlock2D</c> (no attentions).</summary>
public sealed class CrossAttnUpBlock2D : UNetUpBlock
{
    public readonly ModuleList<ResnetBlock2D> resnets;
    public readonly ModuleList<Transformer2DModel>? attentions;
    public readonly ModuleList<Upsample2D>? upsamplers;

    internal CrossAttnUpBlock2D(string name, bool withAttention, int numLayers, int inChannels, int outChannels, int prevOutputChannels, int tembChannels,
                                bool addUpsample, UNet2DConditionConfig config, int heads, int crossAttentionDim, int transformerLayers, Device? device, ScalarType? dtype)
        : base(name)
    {
        int groups = config.NormNumGroups!.Value;
        var resnetList = new List<ResnetBlock2D>();
        var attentionList = new List<Transformer2DModel>();
        for (int i = 0; i < numLayers; i++)
        {
            int skipChannels = i == numLayers - 1 ? inChannels : outChannels;
            int resnetIn = i == 0 ? prevOutputChannels : outChannels;
            resnetList.Add(new ResnetBlock2D(resnetIn + skipChannels, outChannels, tembChannels, groups, config.NormEps, config.Dropout, 1.0, device, dtype));
            if (withAttention)
                attentionList.Add(new Transformer2DModel(heads, outChannels / heads, outChannels, transformerLayers, crossAttentionDim, groups,
                                                         config.UseLinearProjection, config.UpcastAttention, config.Dropout, device, dtype));
        }
        resnets = nn.ModuleList(resnetList.ToArray());
        if (withAttention) attentions = nn.ModuleList(attentionList.ToArray());
        if (addUpsample) upsamplers = nn.ModuleList(new Upsample2D(outChannels, outChannels, device, dtype));
        RegisterComponents();
    }

    public override int NumResnets => resnets.Count;

    public override Tensor forward(Tensor hiddenStates, IReadOnlyList<Tensor> skips, Tensor temb, Tensor encoderHiddenStates, long[]? upsampleSize)
    {
        if (skips.Count != resnets.Count) throw new ArgumentException($"{GetName()} needs {resnets.Count} skip tensors, got {skips.Count}.");
        var h = hiddenStates;
        for (int i = 0; i < resnets.Count; i++)
        {
            using (var scope = NewDisposeScope())
            {
                var joined = cat([h, skips[skips.Count - 1 - i]], 1);
                h = resnets[i].forward(joined, temb);
                if (attentions is not null) h = attentions[i].forward(h, encoderHiddenStates);
                h.MoveToOuterDisposeScope();
            }
        }
        if (upsamplers is not null)
            foreach (var up in upsamplers) h = up.forward(h, upsampleSize);
        return h;
    }
}

/// <summary>diffusers' <c>UNetMidBlock2DCrossAttn</c>: resnet, then (transformer, resnet) per layer.</summary>
public sealed class UNetMidBlock2DCrossAttn : nn.Module
{
    public readonly ModuleList<Transformer2DModel> attentions;
    public readonly ModuleList<ResnetBlock2D> resnets;

    internal UNetMidBlock2DCrossAttn(int channels, int tembChannels, UNet2DConditionConfig config, int heads, int crossAttentionDim, int transformerLayers,
                                     Device? device, ScalarType? dtype, int numLayers = 1)
        : base(nameof(UNetMidBlock2DCrossAttn))
    {
        int groups = config.NormNumGroups!.Value;
        ResnetBlock2D Resnet() =>
            new(channels, channels, tembChannels, groups, config.NormEps, config.Dropout, config.MidBlockScaleFactor, device, dtype);
        var resnetList = new List<ResnetBlock2D> { Resnet() };
        var attentionList = new List<Transformer2DModel>();
        for (int i = 0; i < numLayers; i++)
        {
            attentionList.Add(new Transformer2DModel(heads, channels / heads, channels, transformerLayers, crossAttentionDim, groups,
                                                     config.UseLinearProjection, config.UpcastAttention, config.Dropout, device, dtype));
            resnetList.Add(Resnet());
        }
        attentions = nn.ModuleList(attentionList.ToArray());
        resnets = nn.ModuleList(resnetList.ToArray());
        RegisterComponents();
    }

    public Tensor forward(Tensor hiddenStates, Tensor temb, Tensor encoderHiddenStates)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].forward(hiddenStates, temb);
        for (int i = 0; i < attentions.Count; i++)
        {
            h = attentions[i].forward(h, encoderHiddenStates);
            h = resnets[i + 1].forward(h, temb);
        }
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers' <c>UNet2DConditionModel</c> for SD 1.x/2.x configs: predicts noise (or v, or x0, depending on how the
/// weights were trained) from a noisy latent, the timestep and the text-encoder hidden states. State-dict keys equal diffusers'.
/// </summary>
public sealed class UNet2DConditionModel : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    public readonly Conv2d conv_in;
    public readonly Timesteps time_proj;
    public readonly TimestepEmbedding time_embedding;
    public readonly ModuleList<UNetDownBlock> down_blocks;
    public readonly UNetMidBlock2DCrossAttn mid_block;
    public readonly ModuleList<UNetUpBlock> up_blocks;
    public readonly GroupNorm conv_norm_out;
    public readonly Conv2d conv_out;

    public UNet2DConditionConfig Config { get; }
    /// <summary>Latent height and width must be multiples of this, or the up path interpolates to the skip sizes (as diffusers does).</summary>
    public int OverallUpFactor { get; }

    /// <param name="device">Where parameters are created; <c>torch.META</c> builds the structure without memory.</param>
    public UNet2DConditionModel(UNet2DConditionConfig config, Device? device = null, ScalarType? dtype = null)
        : base(nameof(UNet2DConditionModel))
    {
        config.Validate();
        Config = config;
        var channels = config.BlockOutChannels;
        int blocks = channels.Count;
        int groups = config.NormNumGroups!.Value;
        int[] heads = config.HeadsPerBlock();
        int[] layers = config.LayersPerBlockList();
        int[] crossDims = config.CrossAttentionDimPerBlock();
        int[] transformerLayers = config.TransformerLayersPerBlockList();
        int timeEmbedDim = config.TimeEmbedDim;

        conv_in = nn.Conv2d(config.InChannels, channels[0], config.ConvInKernel, stride: 1, padding: (config.ConvInKernel - 1) / 2, device: device, dtype: dtype);
        time_proj = new Timesteps(channels[0], config.FlipSinToCos, config.FreqShift);
        time_embedding = new TimestepEmbedding(channels[0], timeEmbedDim, device, dtype);

        var downs = new List<UNetDownBlock>();
        int outputChannel = channels[0];
        for (int i = 0; i < blocks; i++)
        {
            int inputChannel = outputChannel;
            outputChannel = channels[i];
            bool isFinal = i == blocks - 1;
            string type = config.DownBlockTypes[i];
            downs.Add(new CrossAttnDownBlock2D(type, type == "CrossAttnDownBlock2D", layers[i], inputChannel, outputChannel, timeEmbedDim, !isFinal,
                                               config, heads[i], crossDims[i], transformerLayers[i], device, dtype));
        }
        down_blocks = nn.ModuleList(downs.ToArray());

        mid_block = new UNetMidBlock2DCrossAttn(channels[^1], timeEmbedDim, config, heads[^1], crossDims[^1], transformerLayers[^1], device, dtype);

        var ups = new List<UNetUpBlock>();
        var reversedChannels = channels.Reverse().ToArray();
        var reversedHeads = heads.Reverse().ToArray();
        var reversedLayers = layers.Reverse().ToArray();
        var reversedCrossDims = crossDims.Reverse().ToArray();
        var reversedTransformerLayers = transformerLayers.Reverse().ToArray();
        int upsamplers = 0;
        outputChannel = reversedChannels[0];
        for (int i = 0; i < blocks; i++)
        {
            bool isFinal = i == blocks - 1;
            int prevOutputChannel = outputChannel;
            outputChannel = reversedChannels[i];
            int inputChannel = reversedChannels[Math.Min(i + 1, blocks - 1)];
            if (!isFinal) upsamplers++;
            string type = config.UpBlockTypes[i];
            ups.Add(new CrossAttnUpBlock2D(type, type == "CrossAttnUpBlock2D", reversedLayers[i] + 1, inputChannel, outputChannel, prevOutputChannel, timeEmbedDim,
                                           !isFinal, config, reversedHeads[i], reversedCrossDims[i], reversedTransformerLayers[i], device, dtype));
        }
        up_blocks = nn.ModuleList(ups.ToArray());
        OverallUpFactor = 1 << upsamplers;

        conv_norm_out = NormLayers.GroupNorm(groups, channels[0], config.NormEps, device, dtype);
        conv_out = nn.Conv2d(channels[0], config.OutChannels, config.ConvOutKernel, stride: 1, padding: (config.ConvOutKernel - 1) / 2, device: device, dtype: dtype);
        RegisterComponents();
        this.DetachFromDisposeScopes();
    }

    public static UNet2DConditionModel FromConfigFile(string configPath, Device? device = null, ScalarType? dtype = null) =>
        new(UNet2DConditionConfig.FromFile(configPath), device, dtype);

    /// <summary>Strictly loads diffusers-layout weights (every key, matching shapes), casting to this model's dtype.</summary>
    public int LoadWeights(ITensorSource source) => StateDictLoader.Load(this, source);

    /// <summary>Strictly loads a diffusers <c>diffusion_pytorch_model.safetensors</c>.</summary>
    public int LoadWeights(string safetensorsPath) => StateDictLoader.LoadFile(this, safetensorsPath);

    /// <summary>All attention modules (attn1 and attn2 of every transformer block) with their state-dict prefixes, e.g. for LoRA.</summary>
    public IEnumerable<(string Name, Attention Attention)> Attentions() =>
        named_modules().Where(m => m.module is Attention).Select(m => (m.name, (Attention)m.module));

    /// <param name="sample">[B, in_channels, H, W] noisy latents.</param>
    /// <param name="timestep">0-d or [B] (or [1]) timesteps, int64 or float; broadcast to the batch.</param>
    /// <param name="encoderHiddenStates">[B, tokens, cross_attention_dim] text-encoder hidden states.</param>
    /// <returns>[B, out_channels, H, W] in the sample's dtype.</returns>
    public override Tensor forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates)
    {
        if (sample.dim() != 4 || sample.shape[1] != Config.InChannels)
            throw new ArgumentException($"UNet2DConditionModel expects a sample [B, {Config.InChannels}, H, W], got [{string.Join(", ", sample.shape)}].");
        long batch = sample.shape[0];
        if (encoderHiddenStates.dim() != 3 || encoderHiddenStates.shape[0] != batch)
            throw new ArgumentException($"UNet2DConditionModel expects encoder hidden states [{batch}, tokens, dim], got [{string.Join(", ", encoderHiddenStates.shape)}].");
        if (timestep.dim() > 1 || (timestep.dim() == 1 && timestep.shape[0] != batch && timestep.shape[0] != 1))
            throw new ArgumentException($"UNet2DConditionModel expects a 0-d, [1] or [{batch}] timestep, got [{string.Join(", ", timestep.shape)}].");

        using var scope = NewDisposeScope();
        // Like diffusers: when the latent size is not a multiple of the total upsampling, upsamplers target the skip sizes.
        bool forwardUpsampleSize = sample.shape[2] % OverallUpFactor != 0 || sample.shape[3] % OverallUpFactor != 0;

        if (Config.CenterInputSample) sample = sample.Mul(2.0).Sub(1.0);

        var timesteps = (timestep.dim() == 0 ? timestep.unsqueeze(0) : timestep).to(sample.device).expand(batch);
        var tEmb = time_proj.forward(timesteps).to(sample.dtype);
        var emb = time_embedding.forward(tEmb);

        var h = conv_in.Forward(sample);
        var skips = new List<Tensor> { h };
        foreach (var block in down_blocks)
        {
            var (output, blockSkips) = block.forward(h, emb, encoderHiddenStates);
            h = output;
            skips.AddRange(blockSkips);
        }

        h = mid_block.forward(h, emb, encoderHiddenStates);

        for (int i = 0; i < up_blocks.Count; i++)
        {
            var block = up_blocks[i];
            bool isFinal = i == up_blocks.Count - 1;
            int n = block.NumResnets;
            var blockSkips = skips.GetRange(skips.Count - n, n);
            skips.RemoveRange(skips.Count - n, n);
            long[]? upsampleSize = !isFinal && forwardUpsampleSize ? skips[^1].shape[2..] : null;
            h = block.forward(h, blockSkips, emb, encoderHiddenStates, upsampleSize);
        }

        h = conv_out.Forward(nn.functional.silu(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}
