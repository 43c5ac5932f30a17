using System.Diagnostics;
using DiffII.Diffusion;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.Schedulers;
using DiffII.Diffusion.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Training = DiffII.Diffusion.Training;

namespace DiffII.TinyWorld.Pretraining;

/// <summary>
/// Options of <c>diffii pretrain-tiny</c>. Defaults are the recipe of the next embedded model (docs/generator.md): kind
/// captions, min-SNR-γ weighting, warm-up + cosine learning rates. The model committed in models/tiny-sd was made by
/// the recipe at commit 5654a5e (context-only captions, uniform ε-loss, constant learning rates).
/// </summary>
public sealed record PretrainOptions
{
    /// <summary>Checkpoints and logs; a rerun with the same folder resumes.</summary>
    public required string WorkFolder { get; init; }
    public long Seed { get; init; } = 20261125;
    public int BatchSize { get; init; } = 48;
    public int VaeSteps { get; init; } = 1250;
    /// <summary>Linear warm-up steps of each stage, before the cosine decay of the learning rate to 5 % of its peak.</summary>
    public int WarmupSteps { get; init; } = 100;
    public double VaeLearningRate { get; init; } = 1e-3;
    /// <summary>Weight of the KL term (SD's VAE uses 1e-6): keeps latents near N(0, I) without blurring.</summary>
    public double VaeKlWeight { get; init; } = 1e-6;
    /// <summary>
    /// Channels of the 8×8 latent (4 in the committed model, as in Stable Diffusion). A VAE round trip of the committed
    /// model keeps 77.6 % of the judge's accuracy (target 90 %); more channels is the cheapest way to keep more detail.
    /// </summary>
    public int LatentChannels { get; init; } = 4;
    /// <summary>
    /// Width of the latent: 8 (4× downsampling, the committed model) or 16 (2×). The wider latent keeps more detail
    /// through the VAE and costs the U-Net about twice the compute per step.
    /// </summary>
    public int LatentSize { get; init; } = 8;
    public int UNetSteps { get; init; } = 5000;
    public double UNetLearningRate { get; init; } = 3e-4;
    /// <summary>Fraction of captions dropped to "" so classifier-free guidance has an unconditional model to lean on.</summary>
    public double CaptionDropout { get; init; } = 0.1;
    /// <summary>Fraction of captions that mention only some attributes (see <see cref="Scene.PartialCaption"/>).</summary>
    public double PartialCaptions { get; init; } = 0.45;
    /// <summary>
    /// Fraction of non-empty captions that name the item's coarse kind (<see cref="ItemKinds"/>: top, trousers, dress,
    /// footwear, bag) instead of the metaclass "clothing item". The ten classes are never named.
    /// </summary>
    public double KindCaptions { get; init; } = 0.8;
    /// <summary>
    /// γ of the min-SNR loss weighting (Hang et al. 2023): each sample's ε-loss is weighted by min(SNR_t, γ) / SNR_t,
    /// so the nearly-clean timesteps stop dominating the gradient. 0 weighs every timestep alike.
    /// </summary>
    public double MinSnrGamma { get; init; } = 5.0;
    /// <summary>Decay of the exponential moving average of the U-Net weights that is exported.</summary>
    public double EmaDecay { get; init; } = 0.999;
    public int CheckpointEvery { get; init; } = 250;
    public string? FashionMnistFolder { get; init; }
    public Device? Device { get; init; }
}

public sealed record PretrainProgress(string Stage, int Step, int TotalSteps, double Loss, TimeSpan Elapsed);

/// <summary>
/// Pretrains the tiny generator on captioned tiny-world pictures, stage by stage (VAE, then U-Net + text encoder),
/// reproducibly from a seed, with checkpoints that make an interrupted run continue exactly where it stopped.
/// The classes of the items are never used: captions describe only the context.
/// </summary>
public sealed class TinyPretrainer(PretrainOptions options)
{
    readonly Device _device = options.Device ?? CPU;
    TinyWorldData? _data;

    TinyWorldData Data => _data ??= new TinyWorldData(
        FashionMnist.Load(FashionMnistSplit.Train, options.FashionMnistFolder), SceneDistribution.Everything, options.Seed);

    public static AutoencoderKL NewVae(double scalingFactor = 1.0, Device? device = null, int latentChannels = 4, int latentSize = 8) =>
        new(TinyModelConfigs.Vae(scalingFactor, latentChannels, latentSize), device);

    /// <summary>Stage 1: the autoencoder (L1 reconstruction + a small KL term), then its latent scaling factor.</summary>
    /// <returns>The trained VAE with its scaling factor set to 1/std of the latents.</returns>
    public AutoencoderKL TrainVae(IProgress<PretrainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        manual_seed(options.Seed);
        var vae = NewVae(device: _device, latentChannels: options.LatentChannels, latentSize: options.LatentSize);
        var optimizer = new Training.AdamW(vae.parameters(), lr: options.VaeLearningRate, beta1: 0.9, beta2: 0.99, weight_decay: 1e-4);
        var checkpoint = new TrainingCheckpoint(options.WorkFolder, "vae");
        var state = checkpoint.TryLoad(vae, optimizer) ?? new StageState(0, []);
        if (state.ScalingFactor is double done && state.Step >= options.VaeSteps)
            return WithScaling(vae, done);

        var clock = Stopwatch.StartNew();
        double elapsedBefore = state.ElapsedSeconds;
        double running = double.NaN;
        string? trace = null;
        var nonFinite = new Training.NonFiniteSteps((at, value) => new PretrainingDivergedException("vae", at, value, trace));
        vae.train();
        for (int step = state.Step; step < options.VaeSteps; step++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                checkpoint.Save(vae, optimizer, state with { Step = step, ElapsedSeconds = elapsedBefore + clock.Elapsed.TotalSeconds });
                cancellationToken.ThrowIfCancellationRequested();
            }
            using var scope = NewDisposeScope();
            var images = TinyWorldData.ToTensor(Data.Batch("vae", step, options.BatchSize), _device);
            using var generator = new Generator((ulong)(options.Seed + step), _device);
            LearningRateSchedule.Apply(optimizer, LearningRateSchedule.WarmupCosine(step, options.VaeSteps, options.WarmupSteps, options.VaeLearningRate));
            optimizer.zero_grad();
            using var posterior = vae.Encode(images);
            var reconstruction = vae.Decode(posterior.Sample(generator));
            var kl = (posterior.Mean.Square().Add(posterior.Std.Square()).Sub(1) - posterior.LogVar).sum().Mul(0.5).Div(options.BatchSize);
            var loss = (reconstruction - images).abs().mean().Add(kl.Mul(options.VaeKlWeight));
            loss.backward();
            double gradientNorm = nn.utils.clip_grad_norm_(vae.parameters(), 1.0);
            double value = loss.item<float>();
            if (nonFinite.Stops(value, gradientNorm))
                trace = Training.NonFiniteTrace.Describe([("vae", vae)], () => vae.Decode(vae.Encode(images).Sample(generator)));
            if (nonFinite.Retry(step, value, gradientNorm)) { optimizer.zero_grad(); step--; continue; }
            optimizer.step();

            running = double.IsNaN(running) ? value : 0.98 * running + 0.02 * value;
            if ((step + 1) % 50 == 0) state.Losses.Add(new LossPoint(step + 1, running));
            progress?.Report(new PretrainProgress("vae", step + 1, options.VaeSteps, running, TimeSpan.FromSeconds(elapsedBefore + clock.Elapsed.TotalSeconds)));
            if ((step + 1) % options.CheckpointEvery == 0 && step + 1 < options.VaeSteps)
                checkpoint.Save(vae, optimizer, state with { Step = step + 1, ElapsedSeconds = elapsedBefore + clock.Elapsed.TotalSeconds });
        }

        vae.eval();
        double scaling = MeasureScalingFactor(vae);
        checkpoint.Save(vae, optimizer, state with { Step = options.VaeSteps, ScalingFactor = scaling, ElapsedSeconds = elapsedBefore + clock.Elapsed.TotalSeconds });
        return WithScaling(vae, scaling);
    }

    /// <summary>1 / std of the latent means over held-out batches, so scaled latents have unit variance (as SD's 0.18215 does for its VAE).</summary>
    double MeasureScalingFactor(AutoencoderKL vae)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var means = new List<Tensor>();
        for (int i = 0; i < 16; i++)
        {
            using var posterior = vae.Encode(TinyWorldData.ToTensor(Data.Batch("vae-scale", i, options.BatchSize), _device));
            means.Add(posterior.Mean.clone());
        }
        double std = cat(means).std().item<float>();
        return 1.0 / std;
    }

    /// <summary>The tokenizer: a BPE vocabulary learned from the tiny world's words, in CLIP's format (stage 0, instant).</summary>
    public ClipTokenizer BuildTokenizer()
    {
        string folder = Path.Combine(options.WorkFolder, "tokenizer");
        if (!File.Exists(Path.Combine(folder, "vocab.json")))
        {
            var (vocab, merges) = BpeVocabularyBuilder.Build(Scene.Vocabulary());
            BpeVocabularyBuilder.Write(folder, vocab, merges);
        }
        return ClipTokenizer.FromFiles(Path.Combine(folder, "vocab.json"), Path.Combine(folder, "merges.txt"));
    }

    public static ClipTextConfig TextConfig(ClipTokenizer tokenizer) => new()
    {
        VocabSize = tokenizer.VocabSize, HiddenSize = TinyModelConfigs.TextHidden, IntermediateSize = 4 * TinyModelConfigs.TextHidden,
        ProjectionDim = TinyModelConfigs.TextHidden, NumHiddenLayers = 3, NumAttentionHeads = 4, MaxPositionEmbeddings = 77,
        HiddenAct = "quick_gelu", LayerNormEps = 1e-5, PadTokenId = tokenizer.PadTokenId, BosTokenId = tokenizer.BosTokenId, EosTokenId = tokenizer.EosTokenId,
    };

    /// <summary>
    /// Stage 2: the U-Net and the text encoder, jointly, with the ε-prediction loss on VAE latents of captioned
    /// pictures. Captions are full, partial, or empty (for classifier-free guidance). An EMA of the U-Net is kept
    /// and is what gets exported.
    /// </summary>
    public StableDiffusion TrainUNet(AutoencoderKL vae, IProgress<PretrainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var tokenizer = BuildTokenizer();
        manual_seed(options.Seed + 1);
        var unet = new UNet2DConditionModel(TinyModelConfigs.UNet(options.LatentChannels, options.LatentSize), _device);
        var text = new ClipTextModel(TextConfig(tokenizer), _device);
        var ema = new UNet2DConditionModel(TinyModelConfigs.UNet(options.LatentChannels, options.LatentSize), _device).Freeze();
        CopyWeights(unet, ema);
        var schedule = new NoiseSchedule(DDIMSchedulerConfig.FromJson(TinyModelConfigs.SchedulerJson));
        vae.Freeze();

        // (A ModuleList built around existing modules reports no parameters in TorchSharp 0.107: list them directly.)
        var trainable = unet.parameters().Concat(text.parameters()).ToList();
        var optimizer = new Training.AdamW(trainable, lr: options.UNetLearningRate, beta1: 0.9, beta2: 0.999, weight_decay: 1e-2);
        var checkpoint = new TrainingCheckpoint(options.WorkFolder, "unet");
        var extras = new Dictionary<string, nn.Module> { ["text"] = text, ["ema"] = ema };
        var state = checkpoint.TryLoad(unet, optimizer, extras) ?? new StageState(0, []);

        var clock = Stopwatch.StartNew();
        double elapsedBefore = state.ElapsedSeconds;
        double running = double.NaN;
        string? trace = null;
        var nonFinite = new Training.NonFiniteSteps((at, value) => new PretrainingDivergedException("unet", at, value, trace));
        unet.train(); text.train();
        for (int step = state.Step; step < options.UNetSteps; step++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                checkpoint.Save(unet, optimizer, state with { Step = step, ElapsedSeconds = elapsedBefore + clock.Elapsed.TotalSeconds }, extras);
                cancellationToken.ThrowIfCancellationRequested();
            }
            using var scope = NewDisposeScope();
            var batch = Data.Batch("unet", step, options.BatchSize);
            var random = new Random((int)((options.Seed * 31 + step) & 0x7fffffff));
            var captions = batch.Select(b =>
            {
                double u = random.NextDouble();
                if (u < options.CaptionDropout) return "";
                string subject = random.NextDouble() < options.KindCaptions ? ItemKinds.WordOf(b.Label) : Scene.Metaclass;
                return u < options.CaptionDropout + options.PartialCaptions ? b.Scene.PartialCaptionOf(subject, random, 0.5) : b.Scene.CaptionOf(subject);
            }).ToList();
            using var generator = new Generator((ulong)(options.Seed * 1000003 + step), _device);
            Tensor latents;
            using (no_grad())
            using (var posterior = vae.Encode(TinyWorldData.ToTensor(batch, _device)))
                latents = posterior.Sample(generator).Mul(vae.ScalingFactor);
            var noise = randn(latents.shape, device: _device, generator: generator);
            var timesteps = TrainingNoise.SampleTimesteps(schedule, options.BatchSize, _device, generator);
            var noisy = TrainingNoise.AddNoise(schedule, latents, noise, timesteps);

            LearningRateSchedule.Apply(optimizer, LearningRateSchedule.WarmupCosine(step, options.UNetSteps, options.WarmupSteps, options.UNetLearningRate));
            optimizer.zero_grad();
            var tokens = tokenizer.EncodeBatch(captions, _device);
            var states = text.forward(tokens);
            var perSample = (unet.forward(noisy, timesteps, states) - noise).Square().mean([1L, 2L, 3L]);
            var loss = (perSample * MinSnrWeights(schedule, timesteps, options.MinSnrGamma)).mean();
            loss.backward();
            double gradientNorm = nn.utils.clip_grad_norm_(trainable, 1.0);
            double value = loss.item<float>();
            if (nonFinite.Stops(value, gradientNorm))
                trace = Training.NonFiniteTrace.Describe([("text", text), ("unet", unet)], () => unet.forward(noisy, timesteps, text.forward(tokens)));
            if (nonFinite.Retry(step, value, gradientNorm)) { optimizer.zero_grad(); step--; continue; }
            optimizer.step();
            UpdateEma(unet, ema, Math.Min(options.EmaDecay, (1.0 + step) / (10.0 + step)));

            running = double.IsNaN(running) ? value : 0.98 * running + 0.02 * value;
            if ((step + 1) % 50 == 0) state.Losses.Add(new LossPoint(step + 1, running));
            progress?.Report(new PretrainProgress("unet", step + 1, options.UNetSteps, running, TimeSpan.FromSeconds(elapsedBefore + clock.Elapsed.TotalSeconds)));
            if ((step + 1) % options.CheckpointEvery == 0 && step + 1 < options.UNetSteps)
                checkpoint.Save(unet, optimizer, state with { Step = step + 1, ElapsedSeconds = elapsedBefore + clock.Elapsed.TotalSeconds }, extras);
        }
        checkpoint.Save(unet, optimizer, state with { Step = options.UNetSteps, ElapsedSeconds = elapsedBefore + clock.Elapsed.TotalSeconds }, extras);
        text.eval();
        unet.Dispose();
        return StableDiffusion.FromComponents(options.WorkFolder, tokenizer, text, ema, vae, schedule.Config);
    }

    /// <summary>Every stage in order, then the diffusers folder in fp16 (what is committed under models/).</summary>
    public StableDiffusion Run(string outputFolder, IProgress<PretrainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var held = HeldTensors.Hold();
        // Two runs on one work folder would overwrite each other's checkpoints.
        using var workLock = DiffII.Storage.WorkFolderLock.Acquire(options.WorkFolder);
        var vae = TrainVae(progress, cancellationToken);
        var sd = TrainUNet(vae, progress, cancellationToken);
        sd.SaveDiffusersFolder(outputFolder, ScalarType.Float16);
        TinyModelCard.Write(sd, outputFolder, options, options.FashionMnistFolder);
        return sd;
    }

    /// <summary>min(SNR_t, γ) / SNR_t per sample for the ε-loss, SNR_t = ᾱ_t / (1 − ᾱ_t); all ones when γ is 0.</summary>
    internal static Tensor MinSnrWeights(NoiseSchedule schedule, Tensor timesteps, double gamma)
    {
        if (gamma <= 0) return ones(timesteps.shape, device: timesteps.device);
        var alphas = schedule.AlphasCumprodTensor(timesteps.device).index_select(0, timesteps);
        var snr = alphas / alphas.Rsub(1);
        return snr.ClampMax(gamma) / snr;
    }

    static void CopyWeights(nn.Module from, nn.Module to)
    {
        using var _ = no_grad();
        var source = from.state_dict();
        foreach (var (key, value) in to.state_dict()) value.copy_(source[key]);
    }

    static void UpdateEma(nn.Module model, nn.Module ema, double decay)
    {
        using var _ = no_grad();
        var source = model.state_dict();
        foreach (var (key, value) in ema.state_dict())
            if (value.is_floating_point()) value.Mul_(decay).Add_(source[key], 1 - decay);
            else value.copy_(source[key]);
    }

    static AutoencoderKL WithScaling(AutoencoderKL trained, double scaling)
    {
        var scaled = NewVae(scaling, trained.parameters().First().device, trained.Config.LatentChannels, TinyModelConfigs.ImageSize / trained.DownscaleFactor);
        using (no_grad())
        {
            var source = trained.state_dict();
            foreach (var (key, value) in scaled.state_dict()) value.copy_(source[key]);
        }
        scaled.eval();
        return scaled;
    }
}

/// <summary>A pretraining stage whose loss or gradient stayed non-finite on every try of one step.</summary>
/// <param name="trace">Where the numbers stopped being finite (<see cref="Training.NonFiniteTrace"/>), when known.</param>
public sealed class PretrainingDivergedException(string stage, int step, double value, string? trace = null) : InvalidOperationException(
    $"Pretraining's {stage} stage stopped at step {step}: the loss or its gradient was {value.ToString(System.Globalization.CultureInfo.InvariantCulture)} " +
    $"on {Training.NonFiniteSteps.MaxRetries + 1} tries of the same batch. Nothing of this step was saved; the last checkpoint is intact. " +
    (trace is null ? "" : trace + " ") +
    "Lower the learning rate (--unet-learning-rate, --vae-learning-rate) and run the same command again to resume.")
{
    public string Stage { get; } = stage;
    public int Step { get; } = step;
    /// <summary>Where the numbers stopped being finite, when it was traced.</summary>
    public string? Trace { get; } = trace;
}
