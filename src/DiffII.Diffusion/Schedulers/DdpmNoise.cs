using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Schedulers;

/// <summary>
/// The forward (noising) process of a DDPM-family schedule, for training: diffusers' <c>add_noise</c> and
/// <c>get_velocity</c> with per-sample timesteps, and the uniform timestep draw of the diffusers training scripts.
/// The alpha products are moved to the sample's device and cast to its dtype before use, as diffusers does.
/// </summary>
public static class DdpmNoise
{
    /// <summary>x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · ε, with ᾱ indexed per sample by <paramref name="timesteps"/> [B] (or a 0-d tensor for all).</summary>
    /// <param name="alphasCumprod">The schedule's ᾱ, [T].</param>
    /// <param name="original">x0 [B, ...].</param>
    /// <param name="noise">ε, shaped like x0.</param>
    /// <param name="timesteps">int64 [B], or one timestep for the whole batch.</param>
    public static Tensor AddNoise(Tensor alphasCumprod, Tensor original, Tensor noise, Tensor timesteps)
    {
        CheckShapes(original, noise, timesteps, nameof(original), nameof(noise));
        using var scope = NewDisposeScope();
        var (sqrtAlpha, sqrtOneMinusAlpha) = Coefficients(alphasCumprod, original, timesteps);
        return (sqrtAlpha * original + sqrtOneMinusAlpha * noise).MoveToOuterDisposeScope();
    }

    /// <summary>The v-prediction target v = √ᾱ_t · ε − √(1 − ᾱ_t) · x0 (Salimans and Ho 2022), per-sample timesteps as in <see cref="AddNoise"/>.</summary>
    public static Tensor GetVelocity(Tensor alphasCumprod, Tensor sample, Tensor noise, Tensor timesteps)
    {
        CheckShapes(sample, noise, timesteps, nameof(sample), nameof(noise));
        using var scope = NewDisposeScope();
        var (sqrtAlpha, sqrtOneMinusAlpha) = Coefficients(alphasCumprod, sample, timesteps);
        return (sqrtAlpha * noise - sqrtOneMinusAlpha * sample).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Training timesteps drawn uniformly from [0, <paramref name="numTrainTimesteps"/>), int64 [batch] on
    /// <paramref name="device"/> (default CPU). With a generator, the draw happens on the generator's device and is then moved.
    /// </summary>
    public static Tensor SampleTrainingTimesteps(int numTrainTimesteps, int batch, Generator? generator = null, Device? device = null)
    {
        if (numTrainTimesteps <= 0) throw new ArgumentOutOfRangeException(nameof(numTrainTimesteps), numTrainTimesteps, "Must be positive.");
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "Must be positive.");
        device ??= CPU;
        var drawDevice = generator?.device ?? device;
        var drawn = randint(0, numTrainTimesteps, [batch], dtype: ScalarType.Int64, device: drawDevice, generator: generator);
        return drawn.device_type == device.type && drawn.device_index == device.index ? drawn : drawn.to(device, disposeAfter: true);
    }

    /// <summary>√ᾱ_t and √(1 − ᾱ_t) in the sample's dtype and device, shaped [B, 1, 1, ...] to broadcast over the sample.</summary>
    static (Tensor SqrtAlpha, Tensor SqrtOneMinusAlpha) Coefficients(Tensor alphasCumprod, Tensor sample, Tensor timesteps)
    {
        long count = alphasCumprod.shape[0];
        var steps = timesteps.to(ScalarType.Int64, sample.device);
        // Checked here because an out-of-range index on CUDA is a device-side assert that ends the process.
        if (steps.numel() > 0)
        {
            long low = steps.min().item<long>(), high = steps.max().item<long>();
            if (low < 0 || high >= count)
                throw new ArgumentOutOfRangeException(nameof(timesteps), $"Timesteps must lie in [0, {count}); got values from {low} to {high}.");
        }
        var alphas = alphasCumprod.to(sample.dtype, sample.device)[steps].flatten();
        var shape = new long[sample.dim()];
        Array.Fill(shape, 1L);
        shape[0] = alphas.shape[0];
        return (alphas.sqrt().view(shape), (1 - alphas).sqrt().view(shape));
    }

    static void CheckShapes(Tensor sample, Tensor noise, Tensor timesteps, string sampleName, string noiseName)
    {
        if (!sample.shape.SequenceEqual(noise.shape))
            throw new ArgumentException($"{sampleName} [{string.Join(", ", sample.shape)}] and {noiseName} [{string.Join(", ", noise.shape)}] must have the same shape.");
        if (sample.dim() == 0 || !(timesteps.numel() == 1 || (timesteps.dim() == 1 && timesteps.shape[0] == sample.shape[0])))
            throw new ArgumentException(
                $"timesteps [{string.Join(", ", timesteps.shape)}] must hold one timestep or one per sample (batch {(sample.dim() > 0 ? sample.shape[0] : 0)}).",
                nameof(timesteps));
    }
}
