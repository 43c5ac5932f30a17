using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Schedulers;

/// <summary>
/// The training noise schedule shared by DDIM, inverse DDIM and training: betas, alphas and their cumulative
/// product, computed with the same float32 tensor operations diffusers uses so the values match bit for bit
/// (up to libtorch kernel differences).
/// </summary>
internal static class BetaSchedule
{
    /// <summary>float32 [T] on the CPU.</summary>
    public static Tensor Betas(DDIMSchedulerConfig config)
    {
        using var scope = NewDisposeScope();
        int count = config.NumTrainTimesteps;
        Tensor betas;
        if (config.TrainedBetas is not null)
            betas = tensor(config.TrainedBetas.Select(b => (float)b).ToArray(), dtype: ScalarType.Float32);
        else if (config.BetaSchedule == DDIMSchedulerConfig.Linear)
            betas = linspace(config.BetaStart, config.BetaEnd, count, dtype: ScalarType.Float32);
        else if (config.BetaSchedule == DDIMSchedulerConfig.ScaledLinear)
            // Latent diffusion's schedule: linear in sqrt(beta), squared in float32.
            betas = linspace(Math.Sqrt(config.BetaStart), Math.Sqrt(config.BetaEnd), count, dtype: ScalarType.Float32).pow(2);
        else if (config.BetaSchedule == DDIMSchedulerConfig.SquaredCosCapV2)
            betas = CosineBetas(count);
        else
            throw new InvalidDataException($"scheduler config: 'beta_schedule' '{config.BetaSchedule}' is not supported.");

        if (config.RescaleBetasZeroSnr) betas = RescaleZeroTerminalSnr(betas);
        return betas.MoveToOuterDisposeScope();
    }

    /// <summary>GLIDE's cosine schedule (diffusers' betas_for_alpha_bar, max_beta 0.999), computed in double then stored as float32.</summary>
    static Tensor CosineBetas(int count)
    {
        static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
        var betas = new float[count];
        for (int i = 0; i < count; i++)
        {
            double t1 = (double)i / count, t2 = (double)(i + 1) / count;
            betas[i] = (float)Math.Min(1 - AlphaBar(t2) / AlphaBar(t1), 0.999);
        }
        return tensor(betas, dtype: ScalarType.Float32);
    }

    /// <summary>Lin et al. 2023, Algorithm 1: shift and scale sqrt(alphas_cumprod) so the last timestep has zero SNR.</summary>
    static Tensor RescaleZeroTerminalSnr(Tensor betas)
    {
        var alphasBarSqrt = (1 - betas).cumprod(0).sqrt();
        var first = alphasBarSqrt[0].clone();
        var last = alphasBarSqrt[-1].clone();
        alphasBarSqrt = (alphasBarSqrt - last) * (first / (first - last));
        var alphasBar = alphasBarSqrt.pow(2);
        var alphas = cat([alphasBar.narrow(0, 0, 1), alphasBar.narrow(0, 1, alphasBar.shape[0] - 1) / alphasBar.narrow(0, 0, alphasBar.shape[0] - 1)]);
        return 1 - alphas;
    }
}
