using DiffII.Diffusion.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Denoising;

/// <summary>
/// Step 3 of Diff-II (paper Sec. 3.3, Eq. 8): denoise initial noises with DDIM and classifier-free guidance in two
/// stages. The first round(s·N) steps — the high-noise ones, where layout and context are decided — use the
/// suffixed prompt "a photo of a &lt;class&gt; &lt;metaclass&gt; &lt;suffix&gt;"; the remaining steps use the plain
/// prompt, so the class's learned details are painted last. s = 0 never uses the suffix; s = 1 uses it throughout.
/// </summary>
public static class TwoStageDenoiser
{
    /// <summary>How many of <paramref name="numSteps"/> steps use the suffixed prompt: round(s·N), halves rounded up.</summary>
    public static int SuffixSteps(double splitRatio, int numSteps)
    {
        if (splitRatio is < 0 or > 1 || double.IsNaN(splitRatio))
            throw new ArgumentOutOfRangeException(nameof(splitRatio), $"The split ratio must be in [0, 1]; got {splitRatio}.");
        return (int)Math.Round(splitRatio * numSteps, MidpointRounding.AwayFromZero);
    }

    /// <summary>
    /// Denoises a batch. Sample b uses <paramref name="plainPrompts"/>[b] and, for the first stage,
    /// <paramref name="suffixedPrompts"/>[b] (null for samples without a suffix). Each distinct prompt is encoded once per call, all in one text-encoder batch.
    /// </summary>
    /// <param name="initialNoise">[B, C, h, w] at the noise level of the first step (x_T).</param>
    /// <param name="onStep">Observes each step with the label "suffixed" or "plain".</param>
    public static Tensor Denoise(StableDiffusion sd, Tensor initialNoise, IReadOnlyList<string> plainPrompts, IReadOnlyList<string?> suffixedPrompts,
        double splitRatio, int numSteps = 25, double guidanceScale = 7.5, Action<SamplerStep>? onStep = null,
        CancellationToken cancellationToken = default)
    {
        long batch = initialNoise.shape[0];
        if (plainPrompts.Count != batch || suffixedPrompts.Count != batch)
            throw new ArgumentException($"Need one plain and one suffixed prompt per sample ({batch}); got {plainPrompts.Count} and {suffixedPrompts.Count}.");
        int suffixSteps = SuffixSteps(splitRatio, numSteps);

        using var scope = NewDisposeScope();
        // Samples without a suffix keep their plain prompt in the first stage too.
        var firstStagePrompts = suffixedPrompts.Select((s, i) => s ?? plainPrompts[i]).ToList();
        bool anySuffix = suffixSteps > 0 && suffixedPrompts.Any(s => s is not null);
        bool guided = guidanceScale != 1.0;
        // One text-encoder call for the whole batch: plain prompts, first-stage prompts and the empty prompt, each
        // distinct prompt encoded once (StableDiffusion.EncodePrompts), then split back into the three groups.
        var all = new List<string>(plainPrompts);
        if (anySuffix) all.AddRange(firstStagePrompts);
        if (guided) all.Add("");
        var encoded = sd.EncodePrompts(all);
        int n = (int)batch;
        var plain = encoded.narrow(0, 0, n);
        var suffixed = anySuffix ? encoded.narrow(0, n, n) : plain;
        var unconditional = guided ? encoded.narrow(0, all.Count - 1, 1) : null;

        var result = Sampling.Ddim(sd, initialNoise,
            i => i < suffixSteps && anySuffix ? new StepConditioning(suffixed, "suffixed") : new StepConditioning(plain, "plain"),
            unconditional, guidanceScale, numSteps, onStep: onStep, cancellationToken: cancellationToken);
        return scope.MoveToOuter(result);
    }
}
