using DiffII.Diffusion.Lora;
using DiffII.Diffusion.Pipelines;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>
/// The machine's reference rates (a large matmul, a large conv), the profile of one U-Net evaluation, and the
/// optimisations measured against their absence, all in the same run as the stages they explain.
/// </summary>
public sealed class KernelBench(Harness harness, BenchReport report, TextWriter log)
{
    /// <summary>
    /// Peak references in the run's dtype: an n×n·n×n matmul (2n³ FLOPs) and SD 1.5's most common convolution,
    /// 3×3 320→320 at 64×64 (its first down block at 512 px), batch 2 (one CFG step).
    /// </summary>
    public void MeasurePeaks(int matmulSize, ScalarType dtype)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var device = harness.Device;
        var g = new Generator(3, device);
        var a = randn([matmulSize, matmulSize], dtype: dtype, device: device, generator: g);
        var b = randn([matmulSize, matmulSize], dtype: dtype, device: device, generator: g);
        double matmulFlops = 2.0 * matmulSize * matmulSize * matmulSize;
        double estimate = harness.TimeOnce(() => mm(a, b));
        var t = harness.Measure($"matmul {matmulSize}×{matmulSize}", () => mm(a, b), estimate);
        report.Peaks.Add(new PeakResult("matmul", $"{matmulSize}×{matmulSize} · {matmulSize}×{matmulSize}", t.Seconds.Count, t.Median, t.Min,
            matmulFlops / 1e9, matmulFlops / t.Median / 1e9));

        const int channels = 320, size = 64, batch = 2;
        var x = randn([batch, channels, size, size], dtype: dtype, device: device, generator: g);
        var w = randn([channels, channels, 3, 3], dtype: dtype, device: device, generator: g) * 0.02;
        var bias = zeros([channels], dtype: dtype, device: device);
        double convFlops = FlopFormulas.Conv2d(batch, channels, channels, 1, 3, 3, size, size);
        Action conv = () => nn.functional.conv2d(x, w, bias, padding: [1, 1]);
        estimate = harness.TimeOnce(conv);
        t = harness.Measure($"conv 3×3 {channels}→{channels} @{size}×{size} b{batch}", conv, estimate);
        report.Peaks.Add(new PeakResult("conv", $"3×3, {channels}→{channels}, {size}×{size}, batch {batch}", t.Seconds.Count, t.Median, t.Min,
            convFlops / 1e9, convFlops / t.Median / 1e9));
        g.Dispose();
    }

    /// <summary>Where the time of one U-Net evaluation at <paramref name="batch"/> goes (batch 2 = one CFG step of one image).</summary>
    public void Profile(string model, StableDiffusion sd, int resolution, int batch)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        int latent = resolution / sd.Vae.DownscaleFactor;
        var x = randn([batch, sd.LatentChannels, latent, latent], dtype: sd.DType, device: sd.Device);
        var text = sd.EncodePrompts(BenchModels.Prompts(model, batch));
        Action eval = () => sd.PredictNoise(x, 500, text);
        // One plain call (the stage table has the careful timing); it also warms the batch-2 shapes up.
        double plain = harness.TimeOnce(eval);
        using var profiler = new LayerProfiler(sd.Unet, "unet", sd.Device);
        using var counter = new FlopCounter(sd.Unet);
        double total = harness.TimeOnce(eval);
        var categories = profiler.ByCategory(total);
        var layers = profiler.Layers;
        var flopsByCategory = new Dictionary<TimeCategory, double>
        {
            [TimeCategory.Convolution] = counter.ByCategory[FlopCategory.Convolution],
            [TimeCategory.Linear] = counter.ByCategory[FlopCategory.Linear],
            [TimeCategory.Attention] = counter.ByCategory[FlopCategory.AttentionMatmul],
        };
        var rows = categories.Select(kv =>
        {
            double f = flopsByCategory.GetValueOrDefault(kv.Key);
            return new CategoryTime(kv.Key.ToString(), kv.Value, kv.Value / total, f / 1e9, f > 0 && kv.Value > 0 ? f / kv.Value / 1e9 : null);
        }).ToList();
        var byShape = layers.GroupBy(l => l.Shape)
            .Select(g => (Shape: g.Key, Seconds: g.Sum(l => l.Seconds), Flops: g.Sum(l => (double)l.Flops), Calls: g.Sum(l => l.Calls)))
            .OrderByDescending(g => g.Seconds).Take(12)
            .Select(g => $"{g.Shape}: {g.Calls} calls, {Format.Seconds(g.Seconds)} ({g.Seconds / total:P0})" +
                         (g.Flops > 0 ? $", {Format.Rate(g.Flops / g.Seconds / 1e9)} GFLOP/s" : ""))
            .ToList();
        report.Profiles.Add(new ProfileResult
        {
            Model = model, Resolution = resolution, Batch = batch, TotalSeconds = total, UnhookedSeconds = plain,
            Categories = rows, SlowestLayers = layers.OrderByDescending(l => l.Seconds).Take(12).ToList(), Findings = byShape,
        });
        log.WriteLine($"  profile {model}@{resolution} b={batch}: {Format.Seconds(total)} hooked, {Format.Seconds(plain)} plain; " +
                      string.Join(", ", rows.Select(r => $"{r.Category} {r.Share:P0}")));
    }

    /// <summary>The optimisations measured as baseline vs optimised, on the same model and inputs.</summary>
    public void Optimisations(string model, StableDiffusion sd, int resolution)
    {
        using var _ = no_grad();
        int latent = resolution / sd.Vae.DownscaleFactor;
        var prompt = BenchModels.Prompts(model, 1)[0];

        using (var scope = NewDisposeScope())
        {
            // CFG: unconditional and conditional halves as one doubled batch vs two U-Net calls.
            var x = randn([1, sd.LatentChannels, latent, latent], dtype: sd.DType, device: sd.Device);
            var cond = sd.EncodePrompts([prompt]);
            var uncond = sd.EncodePrompts([""]);
            var both = cat([uncond, cond]);
            var x2 = cat([x, x]);
            Action two = () => { sd.PredictNoise(x, 500, uncond); sd.PredictNoise(x, 500, cond); };
            Action doubled = () => sd.PredictNoise(x2, 500, both);
            double estimate = harness.TimeOnce(doubled);
            var (a, b) = harness.MeasurePair("CFG as two U-Net calls", two, "CFG as one doubled batch", doubled, 2 * estimate);
            report.Optimisations.Add(new OptimisationResult("cfg-doubled-batch", model, resolution, 1, "two U-Net calls (b=1 each)", a.Median,
                "one U-Net call (b=2)", b.Median, null));

            // LoRA: live adapters (two small matmuls per projection) vs merged into the weights.
            using var lora = UNetLora.Attach(sd.Unet, 10);
            // Merging and unmerging happen outside the clock: only the U-Net call is timed in each state.
            var (unmerged, merged) = harness.MeasurePair("U-Net b=2, LoRA rank 10 unmerged", doubled, "U-Net b=2, LoRA rank 10 merged", doubled, estimate,
                beforeA: lora.Unmerge, beforeB: lora.Merge);
            lora.Detach();
            report.Optimisations.Add(new OptimisationResult("lora-merged", model, resolution, 2, "LoRA as live adapters", unmerged.Median,
                "LoRA merged into the weights", merged.Median, "rank 10 on q/k/v/out of every attention, as concept learning trains it"));

            // Transformer projections: a 1×1 conv on the feature map then to tokens (diffusers' layout) vs tokens then one matmul
            // (PointwiseConv2d), at the first transformer's shape.
            long width = sd.Unet.Config.BlockOutChannels[0];
            var map = randn([2, width, latent, latent], dtype: sd.DType, device: sd.Device);
            var weight = randn([width, width, 1, 1], dtype: sd.DType, device: sd.Device) * 0.02;
            var convBias = zeros([width], dtype: sd.DType, device: sd.Device);
            Action asConv = () => nn.functional.conv2d(map, weight, convBias).permute(0, 2, 3, 1).reshape(2, -1, width).contiguous();
            Action asMatmul = () => nn.functional.linear(map.permute(0, 2, 3, 1).reshape(2, -1, width), weight.flatten(1), convBias);
            estimate = harness.TimeOnce(asConv);
            var (pc, pm) = harness.MeasurePair($"1×1 conv {width}→{width} @{latent}×{latent} as conv", asConv, "… as matmul on tokens", asMatmul, estimate);
            report.Optimisations.Add(new OptimisationResult("pointwise-conv-as-matmul", model, resolution, 2, "nn.functional.conv2d 1×1, then to tokens", pc.Median,
                "tokens, then one matmul (PointwiseConv2d)", pm.Median, $"proj_in/proj_out of every transformer; {width} channels at {latent}×{latent}"));

            // Attention: SDPA vs the explicit softmax(Q·Kᵀ/√d)·V at the U-Net's largest self-attention.
            var largest = sd.Unet.Attentions().Select(p => p.Attention).First(att => !att.IsCrossAttention);
            long tokens = (long)latent * latent;
            var q = randn([2, largest.Heads, tokens, largest.HeadDim], dtype: sd.DType, device: sd.Device);
            var k = randn([2, largest.Heads, tokens, largest.HeadDim], dtype: sd.DType, device: sd.Device);
            var v = randn([2, largest.Heads, tokens, largest.HeadDim], dtype: sd.DType, device: sd.Device);
            double scale = 1.0 / Math.Sqrt(largest.HeadDim);
            Action math = () =>
            {
                var q3 = q.reshape(-1, tokens, largest.HeadDim);
                var scores = bmm(q3, k.reshape(-1, tokens, largest.HeadDim).transpose(1, 2)) * scale;
                bmm(scores.softmax(-1), v.reshape(-1, tokens, largest.HeadDim));
            };
            Action sdpa = () => nn.functional.scaled_dot_product_attention(q, k, v);
            estimate = harness.TimeOnce(math);
            var (m, s) = harness.MeasurePair($"attention as softmax(QKᵀ)V, L={tokens}", math, $"attention as SDPA, L={tokens}", sdpa, estimate);
            report.Optimisations.Add(new OptimisationResult("sdpa", model, resolution, 2, "explicit softmax(Q·Kᵀ/√d)·V (bmm)", m.Median,
                "scaled_dot_product_attention", s.Median, $"{largest.Heads} heads × {tokens} tokens × {largest.HeadDim} channels, the largest self-attention of the U-Net"));
        }

        using (var scope = NewDisposeScope())
        {
            // Text encoding: a batch of 8 samples of one class, all rows encoded vs each distinct prompt once.
            var copies = Enumerable.Repeat(prompt, 8).ToList();
            Action all = () => sd.TextEncoder.forward(sd.Tokenizer.EncodeBatch(copies, sd.Device));
            Action distinct = () => sd.EncodePrompts(copies);
            double estimate = harness.TimeOnce(all);
            var (a, b) = harness.MeasurePair("text: 8 copies, every row encoded", all, "text: 8 copies, distinct prompts once", distinct, estimate);
            report.Optimisations.Add(new OptimisationResult("prompt-dedup", model, resolution, 8, "8 rows through the text encoder", a.Median,
                "1 row, copied to the 8 samples", b.Median, "one batch of one class; DiffII encodes plain, suffixed and empty prompts in one call"));
        }
    }

    /// <summary>Ratios that follow from the stage table (same run): batching, and caching latents for concept learning.</summary>
    public void DerivedOptimisations(string model, int resolution)
    {
        StageResult? Stage(string name, int batch) =>
            report.Stages.FirstOrDefault(s => s.Model == model && s.Resolution == resolution && s.Stage == name && s.Batch == batch && s.Skipped is null);
        foreach (var name in new[] { "guided-step", "inversion-step" })
        {
            var one = Stage(name, 1);
            var batched = report.Stages.Where(s => s.Model == model && s.Resolution == resolution && s.Stage == name && s.Skipped is null && s.Batch > 1)
                .OrderByDescending(s => s.Batch).FirstOrDefault();
            if (one is null || batched is null) continue;
            report.Optimisations.Add(new OptimisationResult($"batched-{name}", model, resolution, batched.Batch, $"{batched.Batch} calls at b=1",
                one.MedianSeconds * batched.Batch, $"one call at b={batched.Batch}", batched.MedianSeconds, "from the stage table"));
        }
        foreach (var train in report.Stages.Where(s => s.Model == model && s.Resolution == resolution && s.Stage == "train-step" && s.Skipped is null))
        {
            var encode = Stage("vae-encode", train.Batch);
            if (encode is null) continue;
            report.Optimisations.Add(new OptimisationResult("cached-latents", model, resolution, train.Batch, "VAE-encode the batch every step",
                train.MedianSeconds + encode.MedianSeconds, "latents encoded once before training", train.MedianSeconds, "from the stage table"));
        }
    }
}
