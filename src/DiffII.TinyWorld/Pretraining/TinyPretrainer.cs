using System.Diagnostics;
using DiffII.Diffusion.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.TinyWorld.Pretraining;

/// <summary>Options of <c>diffii pretrain-tiny</c>. Defaults are the recipe of the committed model.</summary>
public sealed record PretrainOptions
{
    /// <summary>Checkpoints and logs; a rerun with the same folder resumes.</summary>
    public required string WorkFolder { get; init; }
    public long Seed { get; init; } = 20261125;
    public int BatchSize { get; init; } = 64;
    public int VaeSteps { get; init; } = 3000;
    public double VaeLearningRate { get; init; } = 1e-3;
    /// <summary>Weight of the KL term (SD's VAE uses 1e-6): keeps latents near N(0, I) without blurring.</summary>
    public double VaeKlWeight { get; init; } = 1e-6;
    public int UNetSteps { get; init; } = 12000;
    public double UNetLearningRate { get; init; } = 3e-4;
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

    public static AutoencoderKL NewVae(double scalingFactor = 1.0, Device? device = null) => new(TinyModelConfigs.Vae(scalingFactor), device);

    /// <summary>Stage 1: the autoencoder (L1 reconstruction + a small KL term), then its latent scaling factor.</summary>
    /// <returns>The trained VAE with its scaling factor set to 1/std of the latents.</returns>
    public AutoencoderKL TrainVae(IProgress<PretrainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        manual_seed(options.Seed);
        var vae = NewVae(device: _device);
        var optimizer = optim.AdamW(vae.parameters(), lr: options.VaeLearningRate, beta1: 0.9, beta2: 0.99, weight_decay: 1e-4);
        var checkpoint = new TrainingCheckpoint(options.WorkFolder, "vae");
        var state = checkpoint.TryLoad(vae, optimizer) ?? new StageState(0, []);
        if (state.ScalingFactor is double done && state.Step >= options.VaeSteps)
            return WithScaling(vae, done);

        var clock = Stopwatch.StartNew();
        double elapsedBefore = state.ElapsedSeconds;
        double running = double.NaN;
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
            var generator = new Generator((ulong)(options.Seed + step), _device);
            optimizer.zero_grad();
            using var posterior = vae.Encode(images);
            var reconstruction = vae.Decode(posterior.Sample(generator));
            var kl = 0.5 * (posterior.Mean.square() + posterior.Std.square() - 1 - posterior.LogVar).sum() / options.BatchSize;
            var loss = (reconstruction - images).abs().mean() + options.VaeKlWeight * kl;
            loss.backward();
            nn.utils.clip_grad_norm_(vae.parameters(), 1.0);
            optimizer.step();

            double value = loss.item<float>();
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

    static AutoencoderKL WithScaling(AutoencoderKL trained, double scaling)
    {
        var scaled = NewVae(scaling, trained.parameters().First().device);
        using (no_grad())
        {
            var source = trained.state_dict();
            foreach (var (key, value) in scaled.state_dict()) value.copy_(source[key]);
        }
        scaled.eval();
        return scaled;
    }
}
