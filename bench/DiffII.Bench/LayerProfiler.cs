using System.Diagnostics;
using DiffII.Diffusion.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>Time categories of a profiled forward pass.</summary>
public enum TimeCategory { Convolution, Linear, Attention, Normalisation, Other }

/// <summary>One layer's share of a profiled pass.</summary>
/// <param name="Shape">What the layer computes, e.g. "conv 3×3 320→320 @64×64 b2", to group layers of one shape.</param>
public sealed record LayerTime(string Name, string Shape, TimeCategory Category, double Seconds, long Flops, int Calls);

/// <summary>
/// Wall-clock time per layer of a forward pass, from hooks: each Conv2d, PointwiseConv2d, Linear, GroupNorm and LayerNorm is timed
/// between its pre- and post-hook, and each attention's core (head split, scaled_dot_product_attention, head merge)
/// between the value projection's end and the output projection's start. What is left of the pass's total is
/// "other": activations, residual additions, concatenations, up-sampling, layout copies. CPU kernels run
/// synchronously, so the clock is exact there; on CUDA every reading synchronises first.
/// Profile models whose LoRA is merged (or absent): live adapters run inside the attention window.
/// </summary>
public sealed class LayerProfiler : IDisposable
{
    // The hooks' remove actions.
    readonly List<Action> _hooks = [];
    readonly Dictionary<string, (string Shape, TimeCategory Category, long Ticks, long Flops, int Calls)> _layers = [];
    readonly Action _synchronise;
    readonly Stack<long> _started = new();
    readonly Dictionary<object, long> _attentionStart = new(ReferenceEqualityComparer.Instance);

    public LayerProfiler(nn.Module root, string rootName, Device device)
    {
        _synchronise = device.type == DeviceType.CUDA ? () => cuda.synchronize() : () => { };
        foreach (var (name, module) in FlopCounter.WithRoot(root))
        {
            string path = string.IsNullOrEmpty(name) ? rootName : rootName + "." + name;
            switch (module)
            {
                case Conv2d conv:
                    Time(conv, path, TimeCategory.Convolution, (m, _, output) => FlopCounter.ConvFlops((Conv2d)m, output), (_, output) => ConvShape(conv, output));
                    break;
                case Linear linear:
                    Time(linear, path, TimeCategory.Linear, (m, input, _) => FlopCounter.LinearFlops((Linear)m, input),
                        (input, _) => $"linear {linear.weight!.shape[1]}→{linear.weight!.shape[0]} ×{input.numel() / linear.weight!.shape[1]} tokens");
                    break;
                case PointwiseConv2d pointwise:
                    Time(pointwise, path, TimeCategory.Convolution, (m, input, _) => FlopCounter.PointwiseFlops((PointwiseConv2d)m, input),
                        (input, _) => $"conv 1×1 {pointwise.InChannels}→{pointwise.OutChannels} as matmul ×{input.numel() / pointwise.InChannels} tokens");
                    break;
                case GroupNorm norm:
                    Time(norm, path, TimeCategory.Normalisation, (_, _, _) => 0, (input, _) => $"groupnorm [{string.Join("×", input.shape)}]");
                    break;
                case LayerNorm norm:
                    Time(norm, path, TimeCategory.Normalisation, (_, _, _) => 0, (input, _) => $"layernorm [{string.Join("×", input.shape)}]");
                    break;
                case Attention attention:
                    TimeAttentionCore(attention, path + ".core", attention.to_q, attention.to_k, attention.to_v, (Linear)attention.to_out[0]);
                    break;
                case ClipAttention clip:
                    TimeAttentionCore(clip, path + ".core", clip.q_proj, clip.k_proj, clip.v_proj, clip.out_proj);
                    break;
            }
        }
    }

    public IReadOnlyList<LayerTime> Layers =>
        _layers.Select(kv => new LayerTime(kv.Key, kv.Value.Shape, kv.Value.Category, kv.Value.Ticks / (double)Stopwatch.Frequency, kv.Value.Flops, kv.Value.Calls)).ToList();

    /// <summary>Seconds per category; <see cref="TimeCategory.Other"/> is <paramref name="totalSeconds"/> minus the timed layers.</summary>
    public IReadOnlyDictionary<TimeCategory, double> ByCategory(double totalSeconds)
    {
        var result = Enum.GetValues<TimeCategory>().ToDictionary(c => c, _ => 0.0);
        foreach (var layer in Layers) result[layer.Category] += layer.Seconds;
        result[TimeCategory.Other] = Math.Max(0, totalSeconds - result.Where(kv => kv.Key != TimeCategory.Other).Sum(kv => kv.Value));
        return result;
    }

    public void Reset()
    {
        _layers.Clear();
        _started.Clear();
        _attentionStart.Clear();
    }

    static string ConvShape(Conv2d conv, Tensor output)
    {
        var w = conv.weight!.shape;
        return $"conv {w[2]}×{w[3]} {w[1]}→{w[0]} @{output.shape[^2]}×{output.shape[^1]} b{output.shape[0]}";
    }

    void Time<TModule>(TModule module, string path, TimeCategory category, Func<nn.Module<Tensor, Tensor>, Tensor, Tensor, long> flops,
        Func<Tensor, Tensor, string> shape)
        where TModule : nn.Module<Tensor, Tensor>
    {
        _hooks.Add(module.register_forward_pre_hook((_, input) =>
        {
            _synchronise();
            _started.Push(Stopwatch.GetTimestamp());
            return input;
        }).remove);
        _hooks.Add(module.register_forward_hook((m, input, output) =>
        {
            _synchronise();
            long elapsed = Stopwatch.GetTimestamp() - _started.Pop();
            Record(path, category, elapsed, flops(m, input, output), () => shape(input, output));
            return output;
        }).remove);
    }

    void TimeAttentionCore(object attention, string path, Linear query, Linear key, Linear value, Linear output)
    {
        (long Batch, long Length, long Inner) q = default;
        long keyLength = 0;
        _hooks.Add(query.register_forward_hook((_, _, o) => { q = (o.shape[0], o.shape[1], o.shape[^1]); return o; }).remove);
        _hooks.Add(key.register_forward_hook((_, _, o) => { keyLength = o.shape[1]; return o; }).remove);
        _hooks.Add(value.register_forward_hook((_, _, o) =>
        {
            _synchronise();
            _attentionStart[attention] = Stopwatch.GetTimestamp();
            return o;
        }).remove);
        _hooks.Add(output.register_forward_pre_hook((_, input) =>
        {
            _synchronise();
            if (_attentionStart.Remove(attention, out long start))
                Record(path, TimeCategory.Attention, Stopwatch.GetTimestamp() - start, FlopFormulas.Attention(q.Batch, 1, q.Length, keyLength, q.Inner),
                    () => $"attention b{q.Batch} Lq={q.Length} Lk={keyLength} inner={q.Inner}");
            return input;
        }).remove);
    }

    void Record(string path, TimeCategory category, long ticks, long flops, Func<string> shape)
    {
        var current = _layers.TryGetValue(path, out var known) ? known : (shape(), category, 0L, 0L, 0);
        _layers[path] = (current.Item1, category, current.Item3 + ticks, current.Item4 + flops, current.Item5 + 1);
    }

    public void Dispose()
    {
        foreach (var remove in _hooks) remove();
        _hooks.Clear();
    }
}
