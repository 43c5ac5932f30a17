using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Schedulers;

/// <summary>
/// The forward-process schedule shared by sampling, inversion and training: betas, and ᾱ_t = Π(1 − β) in float32,
/// computed with the same tensor operations as diffusers so the values agree to the last bit.
/// </summary>
public sealed class NoiseSchedule
{
    public NoiseSchedule(DDIMSchedulerConfig config)
    {
        Config = config;
        using var scope = NewDisposeScope();
        int n = config.NumTrainTimesteps;
        Tensor betas = config.TrainedBetas is { } trained
            ? tensor(trained, ScalarType.Float32)
            : config.BetaSchedule switch
            {
                "linear" => linspace(config.BetaStart, config.BetaEnd, n, dtype: ScalarType.Float32),
                "scaled_linear" => linspace(Math.Sqrt(config.BetaStart), Math.Sqrt(config.BetaEnd), n, dtype: ScalarType.Float32).Square(),
                _ => CosineBetas(n),
            };
        if (config.RescaleBetasZeroSnr) betas = RescaleZeroTerminalSnr(betas);
        var alphasCumprod = betas.Rsub(1.0).cumprod(0);
        Betas = betas.data<float>().ToArray();
        AlphasCumprod = alphasCumprod.data<float>().ToArray();
    }

    public DDIMSchedulerConfig Config { get; }
    public int TrainTimesteps => Config.NumTrainTimesteps;
    public float[] Betas { get; }
    /// <summary>ᾱ_t for t = 0 … T−1, float32 as diffusers keeps them.</summary>
    public float[] AlphasCumprod { get; }

    /// <summary>ᾱ as a float32 tensor on <paramref name="device"/>.</summary>
    public Tensor AlphasCumprodTensor(Device? device = null) => tensor(AlphasCumprod, ScalarType.Float32, device);

    /// <summary>Glide's cosine schedule (squaredcos_cap_v2): β_i = min(1 − ᾱ(t_{i+1})/ᾱ(t_i), 0.999), computed in double.</summary>
    static Tensor CosineBetas(int n)
    {
        static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
        var betas = new double[n];
        for (int i = 0; i < n; i++)
            betas[i] = Math.Min(1 - AlphaBar((i + 1.0) / n) / AlphaBar((double)i / n), 0.999);
        return tensor(betas, ScalarType.Float32);
    }

    /// <summary>Rescales betas so the last timestep has zero SNR (Lin et al. 2023, Algorithm 1).</summary>
    static Tensor RescaleZeroTerminalSnr(Tensor betas)
    {
        var sqrtBar = betas.Rsub(1).cumprod(0).sqrt();
        var first = sqrtBar[0].clone();
        var last = sqrtBar[-1].clone();
        sqrtBar = (sqrtBar - last) * (first / (first - last));
        var bar = sqrtBar.Square();
        var alphas = cat([bar[..1], bar[1..] / bar[..^1]]);
        return alphas.Rsub(1);
    }
}
