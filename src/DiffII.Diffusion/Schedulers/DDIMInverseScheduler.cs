using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Schedulers;

/// <summary>
/// diffusers' <c>DDIMInverseScheduler</c>: runs deterministic DDIM backwards, from a clean latent towards noise
/// (Mokady et al. / Wallace et al.). Timesteps ascend; the step at timestep t moves the sample from the level of
/// min(t − T/N, T−1) (or the initial alpha product before the first step) to the level of t, with the model evaluated at t.
/// Built from the same config as <see cref="DDIMScheduler"/> (diffusers' from_config); thresholding does not apply.
/// </summary>
public sealed class DDIMInverseScheduler : IDisposable
{
    readonly float[] _alphasCumprod;

    public DDIMInverseScheduler(DDIMSchedulerConfig config)
    {
        config.Validate();
        Config = config;
        Betas = BetaSchedule.Betas(config);
        Alphas = 1 - Betas;
        AlphasCumprod = Alphas.cumprod(0);
        _alphasCumprod = AlphasCumprod.data<float>().ToArray();
        InitialAlphaCumprod = config.SetAlphaToOne ? 1f : _alphasCumprod[0];
        Timesteps = Enumerable.Range(0, config.NumTrainTimesteps).Select(t => (long)t).ToArray();
    }

    /// <summary>Reads <c>scheduler_config.json</c> (any diffusers scheduler's) and builds the inverse scheduler.</summary>
    public static DDIMInverseScheduler FromConfigFile(string path) => new(DDIMSchedulerConfig.FromFile(path));

    public DDIMSchedulerConfig Config { get; }
    /// <summary>float32 [T], CPU.</summary>
    public Tensor Betas { get; }
    /// <summary>float32 [T], CPU.</summary>
    public Tensor Alphas { get; }
    /// <summary>float32 [T], CPU.</summary>
    public Tensor AlphasCumprod { get; }
    /// <summary>The alpha product the first step starts from: 1 when set_alpha_to_one, else ᾱ_0.</summary>
    public float InitialAlphaCumprod { get; }
    public double InitNoiseSigma => 1.0;
    public int? NumInferenceSteps { get; private set; }
    /// <summary>Ascending. Before <see cref="SetTimesteps"/>: 0 … T−1.</summary>
    public long[] Timesteps { get; private set; }

    public Tensor ScaleModelInput(Tensor sample, long timestep) => sample;

    /// <summary>
    /// diffusers' set_timesteps: "leading" gives k·(T//N) + steps_offset, "trailing" gives round(T − k·T/N) − 1 in
    /// ascending order; "linspace" is not supported by the inverse scheduler.
    /// </summary>
    public void SetTimesteps(int numInferenceSteps)
    {
        if (numInferenceSteps <= 0 || numInferenceSteps > Config.NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), numInferenceSteps,
                $"The number of inference steps must be between 1 and num_train_timesteps ({Config.NumTrainTimesteps}).");
        Timesteps = TimestepSpacing.Ascending(Config, numInferenceSteps);
        NumInferenceSteps = numInferenceSteps;
    }

    /// <summary>One inverse DDIM step: <paramref name="sample"/> is at the level before <paramref name="timestep"/>, the result at <paramref name="timestep"/>.</summary>
    public DDIMStepOutput Step(Tensor modelOutput, long timestep, Tensor sample)
    {
        if (NumInferenceSteps is not int steps)
            throw new InvalidOperationException("The number of inference steps is not set: call SetTimesteps before Step.");
        DdimMath.CheckTimestep(timestep, Config.NumTrainTimesteps);
        DdimMath.CheckSameShape(modelOutput, sample);

        using var scope = NewDisposeScope();

        // 1. The step goes from the source level (one step earlier, capped at T−1) to the target level, the given timestep.
        long targetTimestep = timestep;
        long sourceTimestep = Math.Min(timestep - Config.NumTrainTimesteps / steps, Config.NumTrainTimesteps - 1);

        // 2. Alpha and beta products.
        float alphaProdT = sourceTimestep >= 0 ? _alphasCumprod[sourceTimestep] : InitialAlphaCumprod;
        float alphaProdTPrev = _alphasCumprod[targetTimestep];

        // 3. Predicted x0 and ε from the model output.
        var (predOriginalSample, predEpsilon) = DdimMath.PredictOriginalAndEpsilon(Config.PredictionType, modelOutput, sample, alphaProdT);

        // 4. Clip the predicted x0.
        if (Config.ClipSample)
            predOriginalSample = predOriginalSample.clamp(-Config.ClipSampleRange, Config.ClipSampleRange);

        // 5. The "direction pointing to x_t" at the target level.
        var predSampleDirection = predEpsilon * MathF.Sqrt(1 - alphaProdTPrev);

        // 6. The sample at the target level.
        var prevSample = predOriginalSample * MathF.Sqrt(alphaProdTPrev) + predSampleDirection;

        scope.MoveToOuter(prevSample, predOriginalSample);
        return new DDIMStepOutput(prevSample, predOriginalSample);
    }

    public void Dispose()
    {
        Betas.Dispose();
        Alphas.Dispose();
        AlphasCumprod.Dispose();
    }
}
