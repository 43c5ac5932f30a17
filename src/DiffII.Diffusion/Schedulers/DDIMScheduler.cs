using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Schedulers;

/// <summary>The result of one scheduler step: the next sample and the model's estimate of x₀.</summary>
public readonly record struct SchedulerStep(Tensor PrevSample, Tensor PredOriginalSample);

/// <summary>
/// DDIM (Song et al. 2020) with diffusers' exact semantics: timestep spacing (leading, trailing, linspace),
/// steps_offset, set_alpha_to_one, clip_sample, prediction types epsilon / v_prediction / sample, and eta.
/// </summary>
public sealed class DDIMScheduler(DDIMSchedulerConfig config)
{
    public DDIMSchedulerConfig Config { get; } = config;
    public NoiseSchedule Schedule { get; } = new(config);
    /// <summary>ᾱ used past the last step: 1 with set_alpha_to_one, else ᾱ_0.</summary>
    public double FinalAlphaCumprod => Config.SetAlphaToOne ? 1.0 : Schedule.AlphasCumprod[0];
    public double InitNoiseSigma => 1.0;
    public int NumInferenceSteps { get; private set; }
    /// <summary>Descending timesteps of the current schedule (set by <see cref="SetTimesteps"/>).</summary>
    public long[] Timesteps { get; private set; } = [];

    public void SetTimesteps(int numInferenceSteps)
    {
        int T = Config.NumTrainTimesteps;
        if (numInferenceSteps <= 0 || numInferenceSteps > T)
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), $"The number of steps must be in 1..{T} (the model's training timesteps); got {numInferenceSteps}.");
        NumInferenceSteps = numInferenceSteps;
        Timesteps = Config.TimestepSpacing switch
        {
            // np.linspace(0, T − 1, N).round()[::-1]
            "linspace" => Enumerable.Range(0, numInferenceSteps)
                .Select(i => (long)Math.Round(numInferenceSteps == 1 ? 0 : i * (T - 1.0) / (numInferenceSteps - 1), MidpointRounding.ToEven))
                .Reverse().ToArray(),
            // arange(0, N) · (T // N), reversed, + steps_offset
            "leading" => Enumerable.Range(0, numInferenceSteps).Select(i => (long)i * (T / numInferenceSteps) + Config.StepsOffset).Reverse().ToArray(),
            // round(arange(T, 0, −T/N)) − 1
            _ => TrailingTimesteps(T, numInferenceSteps).Select(t => t - 1).ToArray(),
        };
    }

    internal static long[] TrailingTimesteps(int T, int n)
    {
        double ratio = (double)T / n;
        var values = new List<long>();
        for (int i = 0; ; i++)
        {
            double v = T - i * ratio;
            if (v <= 0) break;
            values.Add((long)Math.Round(v, MidpointRounding.ToEven));
        }
        return values.ToArray();
    }

    /// <summary>ᾱ at <paramref name="timestep"/>, or the final value for a negative timestep.</summary>
    public double AlphaCumprod(long timestep) => timestep >= 0 ? Schedule.AlphasCumprod[timestep] : FinalAlphaCumprod;

    /// <summary>One DDIM step from <paramref name="timestep"/> to the previous timestep of the schedule.</summary>
    /// <param name="varianceNoise">Noise for eta &gt; 0; drawn from <paramref name="generator"/> when not given.</param>
    public SchedulerStep Step(Tensor modelOutput, long timestep, Tensor sample, double eta = 0.0, Generator? generator = null,
        Tensor? varianceNoise = null, bool useClippedModelOutput = false)
    {
        if (NumInferenceSteps == 0) throw new InvalidOperationException("Call SetTimesteps before Step.");
        long prevTimestep = timestep - Config.NumTrainTimesteps / NumInferenceSteps;
        double alphaProdT = Schedule.AlphasCumprod[timestep];
        double alphaProdTPrev = AlphaCumprod(prevTimestep);
        double betaProdT = 1 - alphaProdT;

        using var scope = NewDisposeScope();
        var (predOriginal, predEpsilon) = Predictions(Config, modelOutput, sample, alphaProdT);
        if (Config.ClipSample)
        {
            predOriginal = predOriginal.Clamp(-Config.ClipSampleRange, Config.ClipSampleRange);
            // Diffusers re-derives ε from the clipped x₀ only on request (DDIM paper's "use_clipped_model_output").
            if (useClippedModelOutput) predEpsilon = (sample - predOriginal.Mul(Math.Sqrt(alphaProdT))).Div(Math.Sqrt(betaProdT));
        }

        double variance = (1 - alphaProdTPrev) / betaProdT * (1 - alphaProdT / alphaProdTPrev);
        double stdDevT = eta * Math.Sqrt(variance);
        var direction = predEpsilon.Mul(Math.Sqrt(1 - alphaProdTPrev - stdDevT * stdDevT));
        var prevSample = predOriginal.Mul(Math.Sqrt(alphaProdTPrev)).Add(direction);
        if (eta > 0)
        {
            var noise = varianceNoise ?? randn(modelOutput.shape, dtype: modelOutput.dtype, device: modelOutput.device, generator: generator);
            prevSample = prevSample.Add(noise.Mul(stdDevT));
        }
        return new SchedulerStep(scope.MoveToOuter(prevSample), scope.MoveToOuter(predOriginal));
    }

    /// <summary>x₀ and ε implied by a model output under the configured prediction type.</summary>
    internal static (Tensor PredOriginal, Tensor PredEpsilon) Predictions(DDIMSchedulerConfig config, Tensor modelOutput, Tensor sample, double alphaProdT)
    {
        double a = Math.Sqrt(alphaProdT), b = Math.Sqrt(1 - alphaProdT);
        return config.PredictionType switch
        {
            "epsilon" => ((sample - modelOutput.Mul(b)).Div(a), modelOutput.alias()),
            "sample" => (modelOutput.alias(), (sample - modelOutput.Mul(a)).Div(b)),
            _ => (sample.Mul(a) - modelOutput.Mul(b), modelOutput.Mul(a).Add(sample.Mul(b))), // v_prediction
        };
    }
}
