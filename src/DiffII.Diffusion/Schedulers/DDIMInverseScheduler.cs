using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Schedulers;

/// <summary>
/// DDIM inversion with diffusers' DDIMInverseScheduler semantics: ascending timesteps, each step lifting the sample
/// from the level below (<c>min(t − T/N, T − 1)</c>, or the initial ᾱ for a negative index) to level t.
/// </summary>
public sealed class DDIMInverseScheduler(DDIMSchedulerConfig config)
{
    public DDIMSchedulerConfig Config { get; } = config;
    public NoiseSchedule Schedule { get; } = new(config);
    /// <summary>ᾱ before the first step: 1 with set_alpha_to_one, else ᾱ_0.</summary>
    public double InitialAlphaCumprod => Config.SetAlphaToOne ? 1.0 : Schedule.AlphasCumprod[0];
    public int NumInferenceSteps { get; private set; }
    /// <summary>Ascending timesteps of the current schedule.</summary>
    public long[] Timesteps { get; private set; } = [];

    public void SetTimesteps(int numInferenceSteps)
    {
        int T = Config.NumTrainTimesteps;
        if (numInferenceSteps <= 0 || numInferenceSteps > T)
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), $"The number of steps must be in 1..{T}; got {numInferenceSteps}.");
        NumInferenceSteps = numInferenceSteps;
        Timesteps = Config.TimestepSpacing switch
        {
            "leading" => Enumerable.Range(0, numInferenceSteps).Select(i => (long)i * (T / numInferenceSteps) + Config.StepsOffset).ToArray(),
            "trailing" => DDIMScheduler.TrailingTimesteps(T, numInferenceSteps).Reverse().Select(t => t - 1).ToArray(),
            // diffusers' inverse scheduler offers no linspace spacing.
            _ => throw new NotSupportedException($"DDIM inversion supports timestep_spacing 'leading' and 'trailing', not '{Config.TimestepSpacing}'."),
        };
    }

    /// <summary>One inversion step: from the level below <paramref name="timestep"/> up to <paramref name="timestep"/>.</summary>
    public SchedulerStep Step(Tensor modelOutput, long timestep, Tensor sample)
    {
        if (NumInferenceSteps == 0) throw new InvalidOperationException("Call SetTimesteps before Step.");
        long source = Math.Min(timestep - Config.NumTrainTimesteps / NumInferenceSteps, Config.NumTrainTimesteps - 1);
        double alphaProdT = source >= 0 ? Schedule.AlphasCumprod[source] : InitialAlphaCumprod;
        double alphaProdTNext = Schedule.AlphasCumprod[timestep];

        using var scope = NewDisposeScope();
        var (predOriginal, predEpsilon) = DDIMScheduler.Predictions(Config, modelOutput, sample, alphaProdT);
        if (Config.ClipSample) predOriginal = predOriginal.Clamp(-Config.ClipSampleRange, Config.ClipSampleRange);
        var next = predOriginal.Mul(Math.Sqrt(alphaProdTNext)).Add(predEpsilon.Mul(Math.Sqrt(1 - alphaProdTNext)));
        return new SchedulerStep(scope.MoveToOuter(next), scope.MoveToOuter(predOriginal));
    }
}
