using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Schedulers;

/// <summary>The result of one scheduler step: the next sample and the model's estimate of the clean sample (both owned by the caller).</summary>
public sealed record DDIMStepOutput(Tensor PrevSample, Tensor PredOriginalSample) : IDisposable
{
    public void Dispose()
    {
        PrevSample.Dispose();
        PredOriginalSample.Dispose();
    }
}

/// <summary>
/// diffusers' <c>DDIMScheduler</c> (Song et al. 2020): deterministic (η = 0) or stochastic DDIM sampling.
/// The schedule (<see cref="AlphasCumprod"/>) is float32 like diffusers'; the per-step coefficients are float32
/// scalars, computed with the same float32 operations as diffusers' 0-d tensors, so a step works in the sample's
/// dtype on the sample's device.
/// </summary>
public sealed class DDIMScheduler : IDisposable
{
    readonly float[] _alphasCumprod;

    public DDIMScheduler(DDIMSchedulerConfig config)
    {
        config.Validate();
        Config = config;
        Betas = BetaSchedule.Betas(config);
        Alphas = 1 - Betas;
        AlphasCumprod = Alphas.cumprod(0);
        _alphasCumprod = AlphasCumprod.data<float>().ToArray();
        FinalAlphaCumprod = config.SetAlphaToOne ? 1f : _alphasCumprod[0];
        Timesteps = Enumerable.Range(0, config.NumTrainTimesteps).Select(t => (long)t).Reverse().ToArray();
    }

    /// <summary>Reads <c>scheduler_config.json</c> (any diffusers scheduler's: unknown keys are ignored) and builds the scheduler.</summary>
    public static DDIMScheduler FromConfigFile(string path) => new(DDIMSchedulerConfig.FromFile(path));

    public DDIMSchedulerConfig Config { get; }
    /// <summary>float32 [T], CPU.</summary>
    public Tensor Betas { get; }
    /// <summary>1 − betas, float32 [T], CPU.</summary>
    public Tensor Alphas { get; }
    /// <summary>ᾱ_t = Π(1 − β), float32 [T], CPU.</summary>
    public Tensor AlphasCumprod { get; }
    /// <summary>ᾱ used for the step after the last one: 1 when set_alpha_to_one, else ᾱ_0.</summary>
    public float FinalAlphaCumprod { get; }
    /// <summary>The standard deviation of the initial noise: 1 for DDIM.</summary>
    public double InitNoiseSigma => 1.0;
    /// <summary>Set by <see cref="SetTimesteps"/>; null before.</summary>
    public int? NumInferenceSteps { get; private set; }
    /// <summary>The timesteps to visit, descending. Before <see cref="SetTimesteps"/>: T−1 … 0.</summary>
    public long[] Timesteps { get; private set; }

    /// <summary>DDIM needs no input scaling; here for symmetry with schedulers that do.</summary>
    public Tensor ScaleModelInput(Tensor sample, long timestep) => sample;

    /// <summary>Chooses <paramref name="numInferenceSteps"/> timesteps with the configured spacing, exactly as diffusers' set_timesteps.</summary>
    public void SetTimesteps(int numInferenceSteps)
    {
        if (numInferenceSteps <= 0 || numInferenceSteps > Config.NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), numInferenceSteps,
                $"The number of inference steps must be between 1 and num_train_timesteps ({Config.NumTrainTimesteps}).");
        NumInferenceSteps = numInferenceSteps;
        Timesteps = TimestepSpacing.Descending(Config, numInferenceSteps);
    }

    /// <summary>
    /// One DDIM step from <paramref name="sample"/> at <paramref name="timestep"/> to the previous timestep
    /// (formulas 12 and 16 of the DDIM paper, in diffusers' order).
    /// </summary>
    /// <param name="modelOutput">The model's prediction, interpreted by prediction_type.</param>
    /// <param name="timestep">The current timestep, one of <see cref="Timesteps"/>.</param>
    /// <param name="sample">x_t.</param>
    /// <param name="eta">η: 0 is deterministic DDIM, 1 is DDPM-like.</param>
    /// <param name="generator">Draws the η noise when <paramref name="varianceNoise"/> is not given.</param>
    /// <param name="varianceNoise">The η noise itself (e.g. CycleDiffusion); not together with a generator.</param>
    /// <param name="useClippedModelOutput">Re-derive ε from the clipped x0 (GLIDE).</param>
    public DDIMStepOutput Step(Tensor modelOutput, long timestep, Tensor sample, double eta = 0, Generator? generator = null,
        Tensor? varianceNoise = null, bool useClippedModelOutput = false)
    {
        if (NumInferenceSteps is not int steps)
            throw new InvalidOperationException("The number of inference steps is not set: call SetTimesteps before Step.");
        DdimMath.CheckTimestep(timestep, Config.NumTrainTimesteps);
        DdimMath.CheckSameShape(modelOutput, sample);
        if (eta > 0 && varianceNoise is not null && generator is not null)
            throw new ArgumentException("Pass either a generator or variance noise, not both.");

        using var scope = NewDisposeScope();

        // 1. The previous timestep (t − T/N).
        long prevTimestep = timestep - Config.NumTrainTimesteps / steps;

        // 2. Alpha and beta products.
        float alphaProdT = _alphasCumprod[timestep];
        float alphaProdTPrev = prevTimestep >= 0 ? _alphasCumprod[prevTimestep] : FinalAlphaCumprod;
        float betaProdT = 1 - alphaProdT;

        // 3. Predicted x0 and ε from the model output.
        var (predOriginalSample, predEpsilon) = DdimMath.PredictOriginalAndEpsilon(Config.PredictionType, modelOutput, sample, alphaProdT);

        // 4. Clip or threshold the predicted x0.
        if (Config.Thresholding)
            predOriginalSample = ThresholdSample(predOriginalSample);
        else if (Config.ClipSample)
            predOriginalSample = predOriginalSample.clamp(-Config.ClipSampleRange, Config.ClipSampleRange);

        // 5. σ_t(η) = η · sqrt((1 − ᾱ_prev)/(1 − ᾱ_t)) · sqrt(1 − ᾱ_t/ᾱ_prev).
        float variance = GetVariance(alphaProdT, alphaProdTPrev);
        float stdDevT = (float)eta * MathF.Sqrt(variance);

        if (useClippedModelOutput)
            predEpsilon = (sample - predOriginalSample * MathF.Sqrt(alphaProdT)) / MathF.Sqrt(betaProdT);

        // 6. The "direction pointing to x_t".
        var predSampleDirection = predEpsilon * MathF.Sqrt(1 - alphaProdTPrev - stdDevT * stdDevT);

        // 7. x_{t−1} without noise, then the η noise.
        var prevSample = predOriginalSample * MathF.Sqrt(alphaProdTPrev) + predSampleDirection;
        if (eta > 0)
        {
            varianceNoise ??= DdimMath.RandomNormalLike(modelOutput, generator);
            DdimMath.CheckSameShape(varianceNoise, sample);
            prevSample = prevSample + varianceNoise * stdDevT;
        }

        scope.MoveToOuter(prevSample, predOriginalSample);
        return new DDIMStepOutput(prevSample, predOriginalSample);
    }

    /// <summary>The DDPM posterior variance between two alpha products: (1 − ᾱ_prev)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_prev), in float32.</summary>
    static float GetVariance(float alphaProdT, float alphaProdTPrev)
    {
        float betaProdT = 1 - alphaProdT;
        float betaProdTPrev = 1 - alphaProdTPrev;
        return betaProdTPrev / betaProdT * (1 - alphaProdT / alphaProdTPrev);
    }

    /// <summary>
    /// Imagen's dynamic thresholding: per sample, s = clamp(quantile(|x0|, ratio), 1, sample_max_value); x0 is clamped to
    /// [−s, s] and divided by s. Computed in float32 when the sample is half precision, as diffusers does.
    /// </summary>
    Tensor ThresholdSample(Tensor sample)
    {
        using var scope = NewDisposeScope();
        var dtype = sample.dtype;
        var shape = sample.shape;
        var flat = (dtype is ScalarType.Float32 or ScalarType.Float64 ? sample : sample.to(ScalarType.Float32)).reshape(shape[0], -1);
        var q = tensor(Config.DynamicThresholdingRatio, dtype: flat.dtype, device: flat.device);
        var s = flat.abs().quantile(q, dim: 1).clamp(1.0, Config.SampleMaxValue).unsqueeze(1);
        var result = (flat.clamp(-s, s) / s).reshape(shape).to(dtype);
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc cref="DdpmNoise.AddNoise"/>
    public Tensor AddNoise(Tensor original, Tensor noise, Tensor timesteps) => DdpmNoise.AddNoise(AlphasCumprod, original, noise, timesteps);

    /// <inheritdoc cref="DdpmNoise.GetVelocity"/>
    public Tensor GetVelocity(Tensor sample, Tensor noise, Tensor timesteps) => DdpmNoise.GetVelocity(AlphasCumprod, sample, noise, timesteps);

    /// <summary>Training timesteps uniform in [0, num_train_timesteps), int64 [batch].</summary>
    public Tensor SampleTrainingTimesteps(int batch, Generator? generator = null, Device? device = null) =>
        DdpmNoise.SampleTrainingTimesteps(Config.NumTrainTimesteps, batch, generator, device);

    public void Dispose()
    {
        Betas.Dispose();
        Alphas.Dispose();
        AlphasCumprod.Dispose();
    }
}

/// <summary>The pieces DDIMScheduler and DDIMInverseScheduler share.</summary>
internal static class DdimMath
{
    /// <summary>
    /// (x0, ε) from the model output, for a sample whose alpha product is <paramref name="alphaProdT"/>. A part that is the
    /// model output itself comes back as an alias, so disposing a step's result never disposes the caller's tensor.
    /// </summary>
    public static (Tensor PredOriginalSample, Tensor PredEpsilon) PredictOriginalAndEpsilon(string predictionType, Tensor modelOutput, Tensor sample, float alphaProdT)
    {
        float betaProdT = 1 - alphaProdT;
        float sqrtAlpha = MathF.Sqrt(alphaProdT), sqrtBeta = MathF.Sqrt(betaProdT);
        switch (predictionType)
        {
            case DDIMSchedulerConfig.Epsilon:
                return ((sample - modelOutput * sqrtBeta) / sqrtAlpha, modelOutput.alias());
            case DDIMSchedulerConfig.Sample:
                return (modelOutput.alias(), (sample - modelOutput * sqrtAlpha) / sqrtBeta);
            case DDIMSchedulerConfig.VPrediction:
                return (sample * sqrtAlpha - modelOutput * sqrtBeta, modelOutput * sqrtAlpha + sample * sqrtBeta);
            default:
                throw new InvalidDataException($"scheduler config: 'prediction_type' '{predictionType}' must be epsilon, sample or v_prediction.");
        }
    }

    public static void CheckTimestep(long timestep, int numTrainTimesteps)
    {
        if (timestep < 0 || timestep >= numTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(timestep), timestep,
                $"The timestep must lie in [0, {numTrainTimesteps}). (diffusers' 'trailing' spacing yields −1 for a few step counts, e.g. 61 of 1000; use another count.)");
    }

    public static void CheckSameShape(Tensor a, Tensor sample)
    {
        if (!a.shape.SequenceEqual(sample.shape))
            throw new ArgumentException($"Shape mismatch: [{string.Join(", ", a.shape)}] vs the sample's [{string.Join(", ", sample.shape)}].");
    }

    /// <summary>diffusers' randn_tensor: drawn on the generator's device (CPU generator → CPU draw), then moved to the output's device.</summary>
    public static Tensor RandomNormalLike(Tensor like, Generator? generator)
    {
        var drawDevice = generator?.device ?? like.device;
        var noise = randn(like.shape, dtype: like.dtype, device: drawDevice, generator: generator);
        return noise.device_type == like.device_type && noise.device_index == like.device_index ? noise : noise.to(like.device, disposeAfter: true);
    }
}
