using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Pipelines;

/// <summary>The text conditioning of one denoising step, with a label saying which prompt it is (for observers and logs).</summary>
public sealed record StepConditioning(Tensor TextStates, string Label);

/// <summary>What a sampler reports after each step; <paramref name="Latents"/> is the sample after the step, valid during the callback only.</summary>
public sealed record SamplerStep(int Index, int Total, long Timestep, string Conditioning, Tensor Latents);

/// <summary>
/// The denoising loops, as small flat functions over a <see cref="StableDiffusion"/>: DDIM sampling with
/// classifier-free guidance (conditioning chosen per step, which is what two-stage denoising needs), DDIM inversion,
/// and SDEdit (image-to-image). Every loop frees each step's tensors, can be cancelled between steps, and reports
/// each step to an optional observer.
/// </summary>
public static class Sampling
{
    /// <summary>
    /// DDIM from <paramref name="latents"/> (already at the noise level of step <paramref name="startIndex"/>) down to
    /// x₀. With guidance ≠ 1 the unconditional and conditional halves run as one doubled U-Net batch.
    /// </summary>
    /// <param name="conditioning">Text states [B, 77, D] for step i (0-based over the full schedule).</param>
    /// <param name="unconditional">Text states of the empty prompt, [1 or B, 77, D]; null when guidance is 1.</param>
    public static Tensor Ddim(StableDiffusion sd, Tensor latents, Func<int, StepConditioning> conditioning, Tensor? unconditional,
        double guidanceScale, int numSteps, int startIndex = 0, double eta = 0, Generator? generator = null,
        Action<SamplerStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        var scheduler = new DDIMScheduler(sd.SchedulerConfig);
        scheduler.SetTimesteps(numSteps);
        if (startIndex < 0 || startIndex > numSteps) throw new ArgumentOutOfRangeException(nameof(startIndex));
        bool guided = guidanceScale != 1.0;
        if (guided && unconditional is null) throw new ArgumentException("Classifier-free guidance needs the unconditional text states.", nameof(unconditional));

        using var _ = no_grad();
        var x = Working(latents, sd);
        long batch = x.shape[0];
        for (int i = startIndex; i < numSteps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long t = scheduler.Timesteps[i];
            Tensor next;
            string label;
            using (var scope = NewDisposeScope())
            {
                var step = conditioning(i);
                label = step.Label;
                var text = Batched(step.TextStates, batch, "conditioning");
                Tensor noise;
                if (guided)
                {
                    var both = sd.PredictNoise(cat([x, x]), t, cat([Batched(unconditional!, batch, "unconditional"), text]));
                    var halves = both.chunk(2);
                    noise = halves[0].Add((halves[1] - halves[0]).Mul(guidanceScale));
                }
                else noise = sd.PredictNoise(x, t, text);
                next = scope.MoveToOuter(scheduler.Step(noise, t, x, eta, generator).PrevSample);
            }
            x.Dispose();
            x = next;
            onStep?.Invoke(new SamplerStep(i, numSteps, t, label, x));
        }
        return x;
    }

    /// <summary>
    /// DDIM inversion (guidance 1 by default, as Diff-II uses): maps clean scaled latents to the noise that DDIM
    /// sampling with the same prompt would turn back into them.
    /// </summary>
    public static Tensor DdimInvert(StableDiffusion sd, Tensor latents, Tensor textStates, int numSteps, double guidanceScale = 1.0,
        Tensor? unconditional = null, Action<SamplerStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        var scheduler = new DDIMInverseScheduler(sd.SchedulerConfig);
        scheduler.SetTimesteps(numSteps);
        bool guided = guidanceScale != 1.0;
        if (guided && unconditional is null) throw new ArgumentException("Guided inversion needs the unconditional text states.", nameof(unconditional));

        using var _ = no_grad();
        var x = Working(latents, sd);
        long batch = x.shape[0];
        for (int i = 0; i < numSteps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long t = scheduler.Timesteps[i];
            Tensor next;
            using (var scope = NewDisposeScope())
            {
                var text = Batched(textStates, batch, "text states");
                Tensor noise;
                if (guided)
                {
                    var halves = sd.PredictNoise(cat([x, x]), t, cat([Batched(unconditional!, batch, "unconditional"), text])).chunk(2);
                    noise = halves[0].Add((halves[1] - halves[0]).Mul(guidanceScale));
                }
                else noise = sd.PredictNoise(x, t, text);
                next = scope.MoveToOuter(scheduler.Step(noise, t, x).PrevSample);
            }
            x.Dispose();
            x = next;
            onStep?.Invoke(new SamplerStep(i, numSteps, t, "inversion", x));
        }
        return x;
    }

    /// <summary>
    /// SDEdit: noise clean scaled latents to the level of <paramref name="strength"/> (0 = untouched, 1 = almost pure
    /// noise) and denoise them with DDIM from there, as diffusers' img2img pipeline does.
    /// </summary>
    /// <param name="noise">The noise to add, [B, C, h, w]; drawn from <paramref name="generator"/> when not given (pass it to make each sample's noise independent of batching).</param>
    public static Tensor Img2Img(StableDiffusion sd, Tensor latents, double strength, Func<int, StepConditioning> conditioning,
        Tensor? unconditional, double guidanceScale, int numSteps, Generator? generator = null, double eta = 0,
        Action<SamplerStep>? onStep = null, CancellationToken cancellationToken = default, Tensor? noise = null)
    {
        if (strength is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(strength), $"The SDEdit strength must be in [0, 1]; got {strength}.");
        int initSteps = Math.Min((int)(numSteps * strength), numSteps);
        int startIndex = numSteps - initSteps;
        if (initSteps == 0) return Working(latents, sd);

        var scheduler = new DDIMScheduler(sd.SchedulerConfig);
        scheduler.SetTimesteps(numSteps);
        long tStart = scheduler.Timesteps[startIndex];
        using var scope = NewDisposeScope();
        var x = latents.to(sd.DType, sd.Device);
        noise = noise is null ? randn(x.shape, dtype: x.dtype, device: x.device, generator: generator) : noise.to(x.dtype, x.device);
        var noisy = TrainingNoise.AddNoise(sd.Schedule, x, noise, KeptScalars.Full([x.shape[0]], tStart, ScalarType.Int64, x.device));
        return scope.MoveToOuter(Ddim(sd, noisy, conditioning, unconditional, guidanceScale, numSteps, startIndex, eta, generator, onStep, cancellationToken));
    }

    /// <summary>Constant conditioning for every step.</summary>
    public static Func<int, StepConditioning> Constant(Tensor textStates, string label = "prompt") => _ => new StepConditioning(textStates, label);

    /// <summary>A private copy of the caller's latents in the model's dtype and device (the loop disposes its own tensors, never the caller's).</summary>
    static Tensor Working(Tensor latents, StableDiffusion sd)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(latents.to(sd.DType, sd.Device).clone());
    }

    static Tensor Batched(Tensor states, long batch, string what)
    {
        if (states.shape[0] == batch) return states;
        if (states.shape[0] == 1) return states.expand(batch, -1, -1);
        throw new ArgumentException($"The {what} have batch {states.shape[0]}; expected 1 or {batch}.");
    }
}
