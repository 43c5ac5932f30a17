using DiffII.Augmentation;
using DiffII.Diffusion.Pipelines;
using DiffII.Inversion;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Denoising;

/// <summary>
/// Steps 2b and 3 for one batch of planned samples, in the paper's order. Each sample carries its pair of inversions
/// (z1, z2) of one class and its angle φ, drawn from its own seed by <see cref="SamplePlanner"/>; the start latent is
/// their spherical interpolation (Eq. 7), then the batch is denoised in two stages (Eq. 8): the suffixed prompt for
/// the first round(s·N) steps, the plain prompt after. Baselines take the other branches: Gaussian noise instead of
/// an interpolation, or SDEdit of a training image.
/// </summary>
/// <param name="prompt">A sample's prompt, with the suffix given or without (null).</param>
/// <param name="trainingImage">A training image by id, as a [3, H, W] tensor in [-1, 1] (for SDEdit).</param>
internal sealed class SampleBatch(StableDiffusion sd, GenerationOptions generation, int resolution, InversionPool? pool,
    Func<PlannedSample, string?, string> prompt, Func<string, Tensor> trainingImage)
{
    /// <summary>The denoised latents of <paramref name="batch"/>, one per sample, in order.</summary>
    public Tensor Denoise(IReadOnlyList<PlannedSample> batch, CancellationToken cancellationToken)
    {
        var strategy = batch[0].Strategy;
        var plain = batch.Select(p => prompt(p, null)).ToList();
        if (strategy.IsImageEditing()) return Edit(batch, plain, cancellationToken);

        // Step 2b: pair → φ → slerp (or noise, for the baselines that do not interpolate).
        var start = strategy.NeedsInversions()
            ? stack(batch.Select(p =>
            {
                using var generator = new Generator((ulong)p.Seed, CPU);
                return SphericalInterpolation.Slerp(pool![p.Sources[0]], pool[p.Sources[1]], p.Phi!.Value, generator);
            }).ToArray())
            : stack(batch.Select(p => SeededNoise(p, LatentShape)).ToArray());

        // Step 3: two-stage denoising; samples without a suffix use the plain prompt throughout.
        var suffixed = batch.Select(p => p.Suffix is null ? null : prompt(p, p.Suffix)).ToList();
        return TwoStageDenoiser.Denoise(sd, start, plain, suffixed, batch.Max(p => p.SplitRatio), generation.Steps, generation.GuidanceScale,
            cancellationToken: cancellationToken);
    }

    /// <summary>SDEdit (diffusers' img2img) of each sample's training image at the batch's strength.</summary>
    Tensor Edit(IReadOnlyList<PlannedSample> batch, IReadOnlyList<string> plain, CancellationToken cancellationToken)
    {
        var clean = sd.EncodeImages(stack(batch.Select(p => trainingImage(p.Sources[0])).ToArray()));
        // Each sample's noise comes from its own seed (on the CPU), so it does not depend on the batch it lands in.
        var noise = stack(batch.Select(p => SeededNoise(p, clean.shape[1..])).ToArray());
        var text = sd.EncodePrompts(plain);
        var unconditional = generation.GuidanceScale != 1.0 ? sd.EncodePrompts([""]) : null;
        return Sampling.Img2Img(sd, clean, batch[0].Strength!.Value, Sampling.Constant(text), unconditional, generation.GuidanceScale, generation.Steps,
            cancellationToken: cancellationToken, noise: noise);
    }

    long[] LatentShape => [sd.LatentChannels, resolution / sd.Vae.DownscaleFactor, resolution / sd.Vae.DownscaleFactor];

    /// <summary>Noise from the sample's own seed, on the CPU, so it does not depend on the batch it lands in.</summary>
    static Tensor SeededNoise(PlannedSample p, long[] shape)
    {
        // The using keeps the generator alive until libtorch is done with it: one made inside a call's arguments can be
        // finalized while libtorch draws from it (the same fault as in KeptScalars).
        using var generator = new Generator((ulong)p.Seed, CPU);
        return randn(shape, generator: generator);
    }
}
