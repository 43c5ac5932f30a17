using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Schedulers;

/// <summary>The DDPM forward process for fine-tuning: noising clean latents and the training targets.</summary>
public static class TrainingNoise
{
    /// <summary>x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε, with one timestep per batch element.</summary>
    public static Tensor AddNoise(NoiseSchedule schedule, Tensor original, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Coefficients(schedule, original, timesteps);
        return scope.MoveToOuter((a * original).Add(b * noise));
    }

    /// <summary>The v-prediction target v = √ᾱ_t · ε − √(1 − ᾱ_t) · x₀.</summary>
    public static Tensor Velocity(NoiseSchedule schedule, Tensor original, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Coefficients(schedule, original, timesteps);
        return scope.MoveToOuter(a * noise - b * original);
    }

    /// <summary>The regression target of the model under its prediction type.</summary>
    public static Tensor Target(NoiseSchedule schedule, Tensor original, Tensor noise, Tensor timesteps) =>
        schedule.Config.PredictionType switch
        {
            "epsilon" => noise.alias(),
            "v_prediction" => Velocity(schedule, original, noise, timesteps),
            _ => original.alias(),
        };

    /// <summary>Training timesteps t ~ U{0, …, T − 1}, one per batch element.</summary>
    public static Tensor SampleTimesteps(NoiseSchedule schedule, int batch, Device? device = null, Generator? generator = null) =>
        randint(0, schedule.TrainTimesteps, [batch], dtype: ScalarType.Int64, device: device, generator: generator);

    static (Tensor, Tensor) Coefficients(NoiseSchedule schedule, Tensor original, Tensor timesteps)
    {
        if (timesteps.dim() != 1 || timesteps.shape[0] != original.shape[0])
            throw new ArgumentException($"Expected one timestep per batch element ([{original.shape[0]}]); got [{string.Join(", ", timesteps.shape)}].", nameof(timesteps));
        var alphas = schedule.AlphasCumprodTensor(original.device).index_select(0, timesteps.to(ScalarType.Int64, original.device));
        var shape = new long[original.dim()];
        Array.Fill(shape, 1L);
        shape[0] = original.shape[0];
        var a = alphas.sqrt().reshape(shape).to(original.dtype);
        var b = alphas.Rsub(1).sqrt().reshape(shape).to(original.dtype);
        return (a, b);
    }
}
