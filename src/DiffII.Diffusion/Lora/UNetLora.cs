using System.Text.RegularExpressions;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Lora;

/// <summary>The four projections of an attention layer that LoRA adapts, in diffusers' key spelling.</summary>
public enum AttentionProjection { to_q, to_k, to_v, to_out }

/// <summary>
/// LoRA on every attention of a U-Net (q/k/v/out of self- and cross-attention, mid block included) — the
/// Diff-Mix / diffusers <c>train_dreambooth_lora</c> recipe. The base weights stay frozen and the U-Net's own
/// state-dict keys do not change: adapters hang on <see cref="Attention.Adapters"/>. Saves and loads diffusers'
/// attention-processor format (<c>pytorch_lora_weights.safetensors</c>), reads the newer
/// <c>…to_q.lora.down.weight</c> and PEFT <c>…to_q.lora_A.weight</c> layouts, and merges into the weights for fast
/// inference.
/// </summary>
public sealed class UNetLora : IDisposable
{
    readonly Dictionary<string, (Attention Attention, Dictionary<AttentionProjection, LoraProjection> Projections)> _layers;
    double _scale = 1.0;
    bool _merged;

    UNetLora(Dictionary<string, (Attention, Dictionary<AttentionProjection, LoraProjection>)> layers) { _layers = layers; }

    /// <summary>Attention module paths (e.g. <c>down_blocks.0.attentions.0.transformer_blocks.0.attn1</c>) with adapters.</summary>
    public IReadOnlyCollection<string> AttentionPaths => _layers.Keys;
    public int Rank => _layers.Values.First().Projections.Values.First().Rank;
    public bool IsMerged => _merged;

    /// <summary>The LoRA strength (diffusers' <c>cross_attention_kwargs={"scale": s}</c>).</summary>
    public double Scale
    {
        get => _scale;
        set
        {
            if (_merged) throw new InvalidOperationException("Unmerge the LoRA before changing its scale.");
            _scale = value;
            foreach (var (attention, _) in _layers.Values) attention.Adapters!.Scale = value;
        }
    }

    /// <summary>Adds fresh trainable adapters (rank <paramref name="rank"/>) to every attention of <paramref name="unet"/>.</summary>
    public static UNetLora Attach(UNet2DConditionModel unet, int rank, double? networkAlpha = null, Generator? generator = null)
    {
        var layers = new Dictionary<string, (Attention, Dictionary<AttentionProjection, LoraProjection>)>();
        foreach (var (path, attention) in Attentions(unet))
        {
            var projections = new Dictionary<AttentionProjection, LoraProjection>();
            foreach (var p in Enum.GetValues<AttentionProjection>())
            {
                var weight = ProjectionWeight(attention, p);
                projections[p] = new LoraProjection(weight.shape[1], weight.shape[0], rank, networkAlpha, weight.device, weight.dtype, generator);
            }
            layers[path] = (attention, projections);
        }
        if (layers.Count == 0) throw new InvalidOperationException("The U-Net has no attention layer to adapt.");
        var lora = new UNetLora(layers);
        lora.Install();
        return lora;
    }

    /// <summary>Every trainable LoRA parameter (for the optimiser).</summary>
    public IEnumerable<Parameter> Parameters() =>
        _layers.Values.SelectMany(l => l.Projections.Values).SelectMany(p => p.parameters());

    /// <summary>The weights in diffusers' attention-processor layout.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var result = new Dictionary<string, Tensor>();
        foreach (var (path, (_, projections)) in _layers)
            foreach (var (p, adapter) in projections)
            {
                result[$"{path}.processor.{p}_lora.down.weight"] = adapter.down.weight!;
                result[$"{path}.processor.{p}_lora.up.weight"] = adapter.up.weight!;
            }
        return result;
    }

    /// <summary>Saves as <c>pytorch_lora_weights.safetensors</c>-style file (the format Diff-Mix checkpoints use).</summary>
    public void Save(string path)
    {
        if (_merged) throw new InvalidOperationException("Unmerge the LoRA before saving it, so the file holds the adapters and not a merged copy.");
        SafeTensorsFile.Save(path, StateDict(), new Dictionary<string, string> { ["format"] = "pt" });
    }

    static readonly Regex KeyPattern = new(
        @"^(?:unet\.)?(?:base_model\.model\.)?(?<path>.+?)\.(?:processor\.(?<proj>to_q|to_k|to_v|to_out)_lora\.(?<part>down|up)\.weight" +
        @"|(?<proj>to_q|to_k|to_v|to_out)(?:\.0)?\.(?:lora\.(?<part>down|up)\.weight|lora_(?<ab>A|B)\.weight|(?<alpha>alpha)))$",
        RegexOptions.Compiled);

    /// <summary>
    /// Loads LoRA weights from a file and attaches them to <paramref name="unet"/>. Every key must name an attention
    /// projection of this U-Net with matching in/out sizes; the rank is read from the shapes.
    /// </summary>
    public static UNetLora Load(UNet2DConditionModel unet, string path)
    {
        using var file = SafeTensorsFile.Open(path);
        var byAttention = Attentions(unet).ToDictionary(a => a.Path, a => a.Attention);
        var parts = new Dictionary<(string Path, AttentionProjection Proj), (Tensor? Down, Tensor? Up, double? Alpha)>();
        var problems = new List<string>();
        foreach (var key in file.Keys)
        {
            var m = KeyPattern.Match(key);
            if (!m.Success)
            {
                problems.Add($"'{key}' is not a U-Net attention LoRA key (text-encoder and kohya-style LoRA are not supported)");
                continue;
            }
            string attnPath = m.Groups["path"].Value;
            if (!byAttention.ContainsKey(attnPath)) { problems.Add($"'{key}': this U-Net has no attention '{attnPath}'"); continue; }
            var proj = Enum.Parse<AttentionProjection>(m.Groups["proj"].Value);
            var entry = parts.GetValueOrDefault((attnPath, proj));
            if (m.Groups["alpha"].Success) entry.Alpha = file.Load(key, ScalarType.Float64).item<double>();
            else if (m.Groups["part"].Value == "down" || m.Groups["ab"].Value == "A") entry.Down = file.Load(key);
            else entry.Up = file.Load(key);
            parts[(attnPath, proj)] = entry;
        }

        var layers = new Dictionary<string, (Attention, Dictionary<AttentionProjection, LoraProjection>)>();
        foreach (var ((attnPath, proj), (down, up, alpha)) in parts)
        {
            if (down is null || up is null) { problems.Add($"'{attnPath}.{proj}' has only one of its down/up matrices"); continue; }
            var attention = byAttention[attnPath];
            var weight = ProjectionWeight(attention, proj);
            int rank = (int)down.shape[0];
            if (down.dim() != 2 || up.dim() != 2 || down.shape[1] != weight.shape[1] || up.shape[0] != weight.shape[0] || up.shape[1] != rank)
            {
                problems.Add($"'{attnPath}.{proj}': down [{string.Join(", ", down.shape)}] / up [{string.Join(", ", up.shape)}] do not fit the projection's weight [{string.Join(", ", weight.shape)}]");
                continue;
            }
            var adapter = new LoraProjection(weight.shape[1], weight.shape[0], rank, alpha, weight.device, weight.dtype);
            using (no_grad())
            {
                adapter.down.weight!.copy_(down);
                adapter.up.weight!.copy_(up);
            }
            if (!layers.TryGetValue(attnPath, out var layer)) layers[attnPath] = layer = (attention, new Dictionary<AttentionProjection, LoraProjection>());
            layer.Item2[proj] = adapter;
        }
        foreach (var (down, up, _) in parts.Values) { down?.Dispose(); up?.Dispose(); }
        if (problems.Count > 0)
            throw new CheckpointMismatchException($"{path} is not a LoRA for this U-Net: {problems.Count} problem(s):\n  " + string.Join("\n  ", problems.Take(12)));
        if (layers.Count == 0) throw new CheckpointMismatchException($"{path} holds no LoRA weights.");
        var lora = new UNetLora(layers);
        lora.Install();
        return lora;
    }

    /// <summary>Adds every adapter's update into the base weights (fast inference) and removes the adapters from the forward pass.</summary>
    public void Merge()
    {
        if (_merged) return;
        ApplyToWeights(+1);
        foreach (var (attention, _) in _layers.Values) attention.Adapters = null;
        _merged = true;
    }

    /// <summary>Subtracts what <see cref="Merge"/> added (exact up to float rounding) and reinstalls the adapters.</summary>
    public void Unmerge()
    {
        if (!_merged) return;
        ApplyToWeights(-1);
        _merged = false;
        Install();
    }

    /// <summary>Takes the adapters off the U-Net (unmerging first), leaving the base model as it was.</summary>
    public void Detach()
    {
        Unmerge();
        foreach (var (attention, _) in _layers.Values) attention.Adapters = null;
    }

    void ApplyToWeights(int sign)
    {
        using var _ = no_grad();
        foreach (var (attention, projections) in _layers.Values)
            foreach (var (p, adapter) in projections)
            {
                using var scope = NewDisposeScope();
                var weight = ProjectionWeight(attention, p);
                weight.Add_(adapter.WeightDelta().to(weight.dtype, weight.device).Mul(sign * _scale));
            }
    }

    void Install()
    {
        foreach (var (attention, projections) in _layers.Values)
            attention.Adapters = new AttentionAdapters
            {
                Q = projections.GetValueOrDefault(AttentionProjection.to_q),
                K = projections.GetValueOrDefault(AttentionProjection.to_k),
                V = projections.GetValueOrDefault(AttentionProjection.to_v),
                Out = projections.GetValueOrDefault(AttentionProjection.to_out),
                Scale = _scale,
            };
    }

    static IEnumerable<(string Path, Attention Attention)> Attentions(UNet2DConditionModel unet) => unet.Attentions();

    static Tensor ProjectionWeight(Attention attention, AttentionProjection projection) => projection switch
    {
        AttentionProjection.to_q => attention.to_q.weight!,
        AttentionProjection.to_k => attention.to_k.weight!,
        AttentionProjection.to_v => attention.to_v.weight!,
        _ => ((Linear)attention.to_out[0]).weight!,
    };

    public void Dispose()
    {
        Detach();
        foreach (var adapter in _layers.Values.SelectMany(l => l.Projections.Values)) adapter.Dispose();
    }
}
