using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>What bf16 generation changes against float32 on the same weights: final latents' error after a full guided DDIM run.</summary>
public sealed record BFloat16Error(int Steps, double GuidanceScale, int Batch, double MaxAbsError, double MaxAbsFloat32, double RmsError, double RmsFloat32)
{
    /// <summary>Largest error as a fraction of the largest float32 latent.</summary>
    public double RelativeMax => MaxAbsError / MaxAbsFloat32;
    /// <summary>RMS error as a fraction of the float32 latents' RMS.</summary>
    public double RelativeRms => RmsError / RmsFloat32;
}

/// <summary>
/// bf16 against float32 on the CPU, on one model loaded twice: the guided U-Net call's speed at each batch, timed
/// in alternation so the machine's load hits both alike (rows "bf16-cpu" of the optimisation table), and the
/// generated latents' error. The CPU's bf16 instructions (<see cref="CpuBFloat16Support"/>) decide the speed.
/// </summary>
public sealed class BFloat16Bench(Harness harness, BenchReport report, TextWriter log)
{
    public const string Name = "bf16-cpu";

    /// <param name="float32">The model in float32.</param>
    /// <param name="bfloat16">The same weights in bfloat16, on the same device.</param>
    /// <param name="weights">Where the weights come from, for the report (pretrained folder or seeded random).</param>
    public void Run(string model, string weights, StableDiffusion float32, StableDiffusion bfloat16, int resolution, IReadOnlyList<int> batches)
    {
        using var _ = no_grad();
        var cpu = CpuBFloat16Support.Detect();
        log.WriteLine($"bf16 vs float32 ({model}, {weights}, {resolution} px; CPU bf16: {cpu.Summary})");
        var error = LatentError(float32, bfloat16, model, resolution, batch: 4, steps: 10, guidance: 7.5);
        log.WriteLine($"  latents after {error.Steps} guided DDIM steps: max error {error.RelativeMax:P2} of the largest latent, RMS error {error.RelativeRms:P2} of the RMS");
        string errorNote = $"CPU bf16: {cpu.Summary}. Same weights ({weights}) and seeded noise, {error.Steps} DDIM steps at CFG {error.GuidanceScale}, batch {error.Batch}: " +
                           $"final latents' max error {error.RelativeMax:P2} of the largest, RMS error {error.RelativeRms:P2} of the RMS";
        Kernels(cpu.Summary);
        int latent = resolution / float32.Vae.DownscaleFactor;
        var prompt = BenchModels.Prompts(model, 1)[0];
        foreach (int batch in batches)
        {
            using var scope = NewDisposeScope();
            var noise = randn([2 * batch, float32.LatentChannels, latent, latent], generator: new Generator(11));
            var text32 = Doubled(float32, prompt, batch);
            var text16 = Doubled(bfloat16, prompt, batch);
            var x32 = noise.to(float32.Device);
            var x16 = noise.to(bfloat16.DType, bfloat16.Device);
            Action inFloat32 = () => float32.PredictNoise(x32, 500, text32);
            Action inBFloat16 = () => bfloat16.PredictNoise(x16, 500, text16);
            double estimate = harness.TimeOnce(inFloat32);
            var (a, b) = harness.MeasurePair($"U-Net b={2 * batch} (CFG of {batch}) float32", inFloat32, "… bfloat16", inBFloat16, estimate);
            report.Optimisations.Add(new OptimisationResult(Name, model, resolution, 2 * batch, "float32", a.Median, "bfloat16", b.Median, errorNote));
        }
    }

    /// <summary>What the instructions offer without the model's per-op overheads: a large matmul and an SD-sized 3×3 conv in each dtype.</summary>
    void Kernels(string cpuSummary)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var a = randn([1024, 1024], generator: generator);
        var b = randn([1024, 1024], generator: generator);
        var map = randn([2, 320, 32, 32], generator: generator);
        var weight = randn([320, 320, 3, 3], generator: generator) * 0.02;
        var (a16, b16, map16, weight16) = (a.bfloat16(), b.bfloat16(), map.bfloat16(), weight.bfloat16());
        Action matmul32 = () => a.matmul(b), matmul16 = () => a16.matmul(b16);
        var (m32, m16) = harness.MeasurePair("matmul 1024² float32", matmul32, "… bfloat16", matmul16, harness.TimeOnce(matmul32));
        report.Optimisations.Add(new OptimisationResult(Name, "kernel", 0, 1, "float32", m32.Median, "bfloat16", m16.Median, $"matmul 1024×1024; CPU bf16: {cpuSummary}"));
        Action conv32 = () => nn.functional.conv2d(map, weight, padding: [1, 1]), conv16 = () => nn.functional.conv2d(map16, weight16, padding: [1, 1]);
        var (c32, c16) = harness.MeasurePair("conv 3×3 320→320 @32×32 b2 float32", conv32, "… bfloat16", conv16, harness.TimeOnce(conv32));
        report.Optimisations.Add(new OptimisationResult(Name, "kernel", 0, 2, "float32", c32.Median, "bfloat16", c16.Median, $"conv 3×3 320→320 at 32×32 (oneDNN); CPU bf16: {cpuSummary}"));
    }

    /// <summary>Unconditional and conditional text states for a CFG batch of <paramref name="batch"/>, in the model's dtype.</summary>
    static Tensor Doubled(StableDiffusion sd, string prompt, int batch)
    {
        var states = sd.EncodePrompts(["", prompt]);
        return cat([states[..1].expand(batch, -1, -1), states[1..].expand(batch, -1, -1)]);
    }

    /// <summary>Runs the same guided DDIM generation in both models from the same noise and compares the final latents.</summary>
    public static BFloat16Error LatentError(StableDiffusion float32, StableDiffusion bfloat16, string model, int resolution, int batch, int steps, double guidance)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int latent = resolution / float32.Vae.DownscaleFactor;
        var prompts = BenchModels.Prompts(model, batch);
        var noise = randn([batch, float32.LatentChannels, latent, latent], generator: new Generator(7));
        Tensor Generate(StableDiffusion sd)
        {
            var text = sd.EncodePrompts(prompts);
            var unconditional = sd.EncodePrompts([""]);
            var start = noise.to(sd.DType, sd.Device) * new DDIMScheduler(sd.SchedulerConfig).InitNoiseSigma;
            return Sampling.Ddim(sd, start, _ => new StepConditioning(text, "prompt"), unconditional, guidance, steps).to(ScalarType.Float32).cpu();
        }
        var reference = Generate(float32);
        var low = Generate(bfloat16);
        var difference = low - reference;
        return new BFloat16Error(steps, guidance, batch,
            difference.abs().max().item<float>(), reference.abs().max().item<float>(),
            difference.square().mean().sqrt().item<float>(), reference.square().mean().sqrt().item<float>());
    }
}
