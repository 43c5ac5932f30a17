using DiffII.Concepts;
using DiffII.Diffusion.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>What one stage call does and how many FLOPs one sample of it costs.</summary>
sealed record StageDefinition(string Name, Func<int, Action> Prepare, Func<double> FlopsPerSample, string? Note = null);

/// <summary>
/// The per-stage measurements of one model at one resolution: text encoding, VAE encode, one inversion step, one
/// guided denoising step (CFG as one doubled batch), VAE decode, one LoRA + textual-inversion training step, each
/// at every batch size; then a profile of one U-Net evaluation. Every stage runs the library's own code path
/// (StableDiffusion, Sampling, ConceptLearner), not a re-implementation.
/// </summary>
public sealed class StageBench(Harness harness, BenchReport report, TextWriter log)
{
    public const int SchedulerSteps = 25;
    public const double Guidance = 7.5;

    public void Run(string model, StableDiffusion sd, int resolution, IReadOnlyList<int> batches, TimeBudget budget, string scratch, bool training)
    {
        using var _ = no_grad();
        int latentSize = resolution / sd.Vae.DownscaleFactor;
        int maxBatch = batches.Max();
        var prompts = BenchModels.Prompts(model, maxBatch);
        var generator = new Generator(7, sd.Device);
        Tensor Latents(int b) => randn([b, sd.LatentChannels, latentSize, latentSize], dtype: sd.DType, device: sd.Device, generator: generator);
        Tensor Images(int b) => (rand([b, 3, resolution, resolution], dtype: sd.DType, device: sd.Device, generator: generator) * 2 - 1);

        // FLOPs per sample, counted once per stage on a batch-1 call (which doubles as that stage's warm-up).
        var flops = new Dictionary<string, double>();
        var firstCall = new Dictionary<string, double>();
        double Count(string key, Action run)
        {
            if (flops.TryGetValue(key, out var f)) return f;
            using var counter = new FlopCounter(sd.TextEncoder, sd.Unet, sd.Vae);
            firstCall[key] = harness.TimeOnce(run);
            flops[key] = counter.Total;
            return counter.Total;
        }

        using var text1 = sd.EncodePrompts([prompts[0]]);
        using var unconditional = sd.EncodePrompts([""]);
        double UNetFlops() => Count("unet", () => sd.PredictNoise(Latents(1), 500, text1));

        var stages = new List<StageDefinition>
        {
            new("text-encode", b => () => sd.EncodePrompts(prompts.Take(b).ToList()), () => Count("text", () => sd.EncodePrompts([prompts[0]])),
                "b distinct prompts (repeats would cost one row each)"),
            new("vae-encode", b => { var x = Images(b); return () => sd.EncodeImages(x); }, () => Count("vae-encode", () => sd.EncodeImages(Images(1)))),
            new("inversion-step", b => { var x = Latents(b); return () => Sampling.DdimInvert(sd, x, text1, 1); }, UNetFlops,
                "one DDIM-inverse step, guidance 1: one U-Net evaluation per sample"),
            new("guided-step", b =>
                {
                    var x = Latents(b);
                    var text = sd.EncodePrompts(prompts.Take(b).ToList());
                    return () => Sampling.Ddim(sd, x, Sampling.Constant(text), unconditional, Guidance, SchedulerSteps, startIndex: SchedulerSteps - 1);
                }, () => 2 * UNetFlops(), "one DDIM step with CFG 7.5: unconditional + conditional in one U-Net batch of 2b"),
            new("vae-decode", b => { var z = Latents(b); return () => sd.DecodeLatents(z); }, () => Count("vae-decode", () => sd.DecodeLatents(Latents(1)))),
        };

        log.WriteLine($"{model} @ {resolution}px ({latentSize}×{latentSize} latents), {sd.DType} on {sd.Device}");
        // Breadth first: every stage at batch 1, then every stage at batch 2, … so that when the time budget runs out it
        // cuts the largest batches of all stages, never a whole stage.
        var progress = stages.ToDictionary(st => st.Name, _ => new StageProgress());
        var trainProgress = new StageProgress();
        foreach (int b in batches)
        {
            foreach (var stage in stages)
                RunStage(model, resolution, stage, b, budget, firstCall, stage.Name switch
                {
                    "text-encode" => "text",
                    "vae-encode" => "vae-encode",
                    "vae-decode" => "vae-decode",
                    _ => "unet",
                }, progress[stage.Name]);
            if (training) RunTraining(model, sd, resolution, b, budget, scratch, flops.GetValueOrDefault("unet"), flops.GetValueOrDefault("text"), trainProgress);
        }
        generator.Dispose();
    }

    /// <summary>What the previous batch of a stage measured, to predict the next one's time and memory.</summary>
    sealed class StageProgress
    {
        public double? PreviousSeconds;
        public long PreviousIncrease;
        public int PreviousBatch = 1;
        public double PerSample = double.NaN;

        public void Record(Timing timing, int batch)
        {
            PreviousSeconds = timing.Median;
            PreviousIncrease = timing.RssIncrease;
            PreviousBatch = batch;
        }

        public string? RefuseMemory(int batch) =>
            PreviousSeconds is null ? null : BatchExtrapolation.RefuseMemory(PreviousIncrease * batch / PreviousBatch, MemoryProbe.AvailableBytes());
    }

    void RunStage(string model, int resolution, StageDefinition stage, int b, TimeBudget budget,
        Dictionary<string, double> firstCall, string countKey, StageProgress progress)
    {
        var result = new StageResult { Model = model, Resolution = resolution, Stage = stage.Name, Batch = b, Note = stage.Note };
        if (double.IsNaN(progress.PerSample))
        {
            string? refusedFirst = budget.Refuse(0);
            if (refusedFirst is not null) { report.Stages.Add(result with { Skipped = refusedFirst }); return; }
            progress.PerSample = stage.FlopsPerSample();
        }
        double estimate = progress.PreviousSeconds is double s ? BatchExtrapolation.Scale(s, progress.PreviousBatch, b)
            : BatchExtrapolation.Scale(firstCall.GetValueOrDefault(countKey, 1), 1, b);
        int runs = harness.Policy.RepetitionsFor(estimate) + (estimate < harness.Policy.WarmupBelowSeconds ? 1 : 0);
        string? refused = budget.Refuse(estimate * runs) ?? progress.RefuseMemory(b);
        if (refused is not null)
        {
            log.WriteLine($"  {stage.Name} b={b}: skipped, {refused}");
            report.Stages.Add(result with { Skipped = refused });
            return;
        }
        Timing timing;
        using (NewDisposeScope()) timing = harness.Measure($"{stage.Name} b={b}", stage.Prepare(b), estimate);
        report.Stages.Add(Complete(result, timing, progress.PerSample * b));
        progress.Record(timing, b);
    }

    StageResult Complete(StageResult result, Timing timing, double flops)
    {
        double? rate = flops > 0 ? flops / timing.Median / 1e9 : null;
        return result with
        {
            Repetitions = timing.Seconds.Count,
            MedianSeconds = timing.Median,
            MinSeconds = timing.Min,
            SamplesPerSecond = result.Batch / timing.Median,
            Gflop = flops > 0 ? flops / 1e9 : null,
            GflopPerSecond = rate,
            FractionOfPeak = rate is double r && report.PeakGflopPerSecond is double p ? r / p : null,
            PeakRssBytes = timing.PeakRss,
            RssIncreaseBytes = timing.RssIncrease,
        };
    }

    /// <summary>
    /// One concept-learning step (LoRA rank 10 + one new token, AdamW) through <see cref="ConceptLearner.Learn"/>:
    /// the first step is the warm-up, the later ones are timed from the learner's own progress reports. FLOPs are
    /// counted as twice the forward pass (the backward pass computes input gradients through the frozen layers,
    /// about the forward's cost; the LoRA weight gradients are negligible).
    /// </summary>
    void RunTraining(string model, StableDiffusion sd, int resolution, int b, TimeBudget budget, string scratch,
        double unetFlopsPerSample, double textFlopsPerPrompt, StageProgress progress)
    {
        const string note = "LoRA rank 10 on every attention + 1 token, AdamW; FLOPs ≈ 2 × forward (input gradients through the frozen layers)";
        var result = new StageResult { Model = model, Resolution = resolution, Stage = "train-step", Batch = b, Note = note };
        var unetStep = report.Stages.FirstOrDefault(s => s.Model == model && s.Resolution == resolution && s.Stage == "inversion-step" && s.Skipped is null);
        // Before anything is measured, a training step is predicted as three U-Net evaluations (forward + backward).
        double estimate = progress.PreviousSeconds is double previous ? BatchExtrapolation.Scale(previous, progress.PreviousBatch, b)
            : unetStep is null ? 1 : 3 * unetStep.MedianSeconds / unetStep.Batch * b;
        int reps = harness.Policy.RepetitionsFor(estimate);
        string? refused = budget.Refuse(estimate * (reps + 1)) ?? progress.RefuseMemory(b);
        if (refused is not null)
        {
            log.WriteLine($"  train-step b={b}: skipped, {refused}");
            report.Stages.Add(result with { Skipped = refused });
            return;
        }
        using var scope = NewDisposeScope();
        var image = rand([3, resolution, resolution], generator: new Generator(11)) * 2 - 1;
        var stamps = new List<double>();
        var options = new ConceptOptions
        {
            Metaclass = model == "tiny" ? "shirt" : "bird", Steps = reps + 1, BatchSize = b, LoraRank = 10,
            CheckpointEvery = int.MaxValue, RandomFlip = false, Seed = 1,
        };
        string work = Path.Combine(scratch, $"train-{model}-{resolution}-{b}");
        long before = MemoryProbe.ResidentBytes();
        Timing timing;
        using (var sampler = new ResidentSetSampler())
        using (enable_grad())
        {
            ConceptLearner.Learn(sd, ["bench"], [[image]], options, work, new StepClock(stamps, harness));
            // The first step is the warm-up (optimizer state, gradient buffers); the others are timed.
            var steps = stamps.Zip(stamps.Skip(1), (a, c) => c - a).ToList();
            timing = new Timing(steps.Count > 0 ? steps : stamps, before, sampler.Peak, 1);
        }
        // Learn leaves the LoRA attached as live adapters; take it off so later stages measure the base model.
        foreach (var (_, attention) in sd.Unet.Attentions()) attention.Adapters = null;
        if (Directory.Exists(work)) Directory.Delete(work, true);
        log.WriteLine($"  {"train-step b=" + b,-44} median {Format.Seconds(timing.Median),9}  min {Format.Seconds(timing.Min),9}  ×{timing.Seconds.Count}  peak RSS {Format.Bytes(timing.PeakRss)}");
        double flops = unetFlopsPerSample > 0 ? 2 * (unetFlopsPerSample * b + textFlopsPerPrompt) : 0;
        report.Stages.Add(Complete(result, timing, flops));
        progress.Record(timing, b);
    }

    /// <summary>Records the time of each reported training step (synchronising the device first).</summary>
    sealed class StepClock(List<double> stamps, Harness harness) : IProgress<ConceptProgress>
    {
        public void Report(ConceptProgress value)
        {
            harness.Synchronise();
            stamps.Add(value.Elapsed.TotalSeconds);
        }
    }
}
