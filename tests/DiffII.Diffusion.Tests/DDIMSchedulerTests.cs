using DiffII.Diffusion.IO;
using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests;

public class DDIMSchedulerTests
{
    public DDIMSchedulerTests() => TorchRuntime.EnsureLoaded();

    static DDIMSchedulerConfig TinyAConfig() => DDIMSchedulerConfig.FromFile(SharedData.TinyA("scheduler", "scheduler_config.json"));

    /// <summary>
    /// T = 4 with betas chosen so that ᾱ = [0.64, 0.48, 0.36, 0.18]: √ᾱ_0 = 0.8, √(1−ᾱ_0) = 0.6, √ᾱ_2 = 0.6, √(1−ᾱ_2) = 0.8.
    /// With 2 inference steps and leading spacing the timesteps are [2, 0], so a step at t = 2 lands on ᾱ_0.
    /// </summary>
    static DDIMSchedulerConfig Small(string prediction = DDIMSchedulerConfig.Epsilon, bool setAlphaToOne = false, bool clip = false, double clipRange = 1.0) => new()
    {
        NumTrainTimesteps = 4,
        TrainedBetas = [0.36, 0.25, 0.25, 0.5],
        PredictionType = prediction,
        SetAlphaToOne = setAlphaToOne,
        ClipSample = clip,
        ClipSampleRange = clipRange,
    };

    static float[] Values(Tensor t) => t.to(ScalarType.Float32).cpu().data<float>().ToArray();

    static void AssertValues(float[] expected, Tensor got, double atol = 1e-6)
    {
        var actual = Values(got);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= atol, $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void TimestepsAndAlphasCumprod_MatchDiffusersGolden()
    {
        using var scope = NewDisposeScope();
        var golden = SafeTensorsFile.LoadAll(SharedData.TinyA("golden.safetensors"));
        using var ddim = new DDIMScheduler(TinyAConfig());
        ddim.SetTimesteps(10);
        Assert.Equal(golden["sched.timesteps"].data<long>().ToArray(), ddim.Timesteps);
        TensorAssert.Close(golden["sched.alphas_cumprod"], ddim.AlphasCumprod, 1e-6, 0, "alphas_cumprod");
        Console.WriteLine($"alphas_cumprod max |diff| vs diffusers: {(golden["sched.alphas_cumprod"] - ddim.AlphasCumprod).abs().max().item<float>():G3}");
        Assert.Equal(ScalarType.Float32, ddim.AlphasCumprod.dtype);
        Assert.Equal(golden["sched.alphas_cumprod"][0].item<float>(), ddim.FinalAlphaCumprod); // set_alpha_to_one = false
        Assert.Equal(1.0, ddim.InitNoiseSigma);

        using var inverse = new DDIMInverseScheduler(TinyAConfig());
        inverse.SetTimesteps(10);
        Assert.Equal(golden["inv.timesteps"].data<long>().ToArray(), inverse.Timesteps);
        Assert.Equal(ddim.FinalAlphaCumprod, inverse.InitialAlphaCumprod);
    }

    [Fact]
    public void Config_FromPndmConfigOfSd15_AndDdimConfigOfSd21_UsesDefaultsAndIgnoresUnknownKeys()
    {
        var sd15 = DDIMSchedulerConfig.FromFile(SharedData.Path("data", "sd-configs", "sd15", "scheduler", "scheduler_config.json"));
        Assert.Equal(
            (1000, 0.00085, 0.012, "scaled_linear", false, false, 1, "epsilon", "leading", false, false, (double[]?)null),
            (sd15.NumTrainTimesteps, sd15.BetaStart, sd15.BetaEnd, sd15.BetaSchedule, sd15.ClipSample, sd15.SetAlphaToOne, sd15.StepsOffset,
             sd15.PredictionType, sd15.TimestepSpacing, sd15.Thresholding, sd15.RescaleBetasZeroSnr, sd15.TrainedBetas));
        var sd21 = DDIMSchedulerConfig.FromFile(SharedData.Path("data", "sd-configs", "sd21", "scheduler", "scheduler_config.json"));
        Assert.Equal("v_prediction", sd21.PredictionType);

        var defaults = new DDIMSchedulerConfig();
        Assert.Equal((1000, 0.0001, 0.02, "linear", true, 1.0, true, 0, "epsilon", "leading"),
            (defaults.NumTrainTimesteps, defaults.BetaStart, defaults.BetaEnd, defaults.BetaSchedule, defaults.ClipSample, defaults.ClipSampleRange,
             defaults.SetAlphaToOne, defaults.StepsOffset, defaults.PredictionType, defaults.TimestepSpacing));

        string dir = Directory.CreateTempSubdirectory("schedconfig").FullName;
        try
        {
            string bad = Path.Combine(dir, "bad.json");
            File.WriteAllText(bad, """{"prediction_type": "flow"}""");
            var e = Assert.Throws<InvalidDataException>(() => DDIMSchedulerConfig.FromFile(bad));
            Assert.Contains(bad, e.Message);
            Assert.Contains("'prediction_type'", e.Message);
            File.WriteAllText(bad, """{"beta_schedule": "sigmoid"}""");
            Assert.Contains("'beta_schedule'", Assert.Throws<InvalidDataException>(() => DDIMSchedulerConfig.FromFile(bad)).Message);
            File.WriteAllText(bad, """{"num_train_timesteps": 3, "trained_betas": [0.1, 0.2]}""");
            Assert.Contains("'trained_betas'", Assert.Throws<InvalidDataException>(() => DDIMSchedulerConfig.FromFile(bad)).Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    // Expected arrays derived by hand from diffusers' set_timesteps (T = 1000):
    //   leading:  arange(N) * (T // N), reversed, + steps_offset            (1000 // 7 = 142)
    //   trailing: round(arange(T, 0, -T/N)) - 1                             (T/7 = 142.857...: 1000, 857.14, 714.29, 571.43, 428.57, 285.71, 142.86)
    //   linspace: round(linspace(0, T-1, N)), reversed, no offset           (999/6 = 166.5: 0, 166.5, 333, 499.5, 666, 832.5, 999; halves to even)
    [Theory]
    [InlineData("leading", 0, 10, new long[] { 900, 800, 700, 600, 500, 400, 300, 200, 100, 0 })]
    [InlineData("leading", 1, 10, new long[] { 901, 801, 701, 601, 501, 401, 301, 201, 101, 1 })]
    [InlineData("trailing", 0, 10, new long[] { 999, 899, 799, 699, 599, 499, 399, 299, 199, 99 })]
    [InlineData("trailing", 1, 10, new long[] { 999, 899, 799, 699, 599, 499, 399, 299, 199, 99 })]
    [InlineData("linspace", 0, 10, new long[] { 999, 888, 777, 666, 555, 444, 333, 222, 111, 0 })]
    [InlineData("linspace", 1, 10, new long[] { 999, 888, 777, 666, 555, 444, 333, 222, 111, 0 })]
    [InlineData("leading", 0, 7, new long[] { 852, 710, 568, 426, 284, 142, 0 })]
    [InlineData("leading", 1, 7, new long[] { 853, 711, 569, 427, 285, 143, 1 })]
    [InlineData("trailing", 0, 7, new long[] { 999, 856, 713, 570, 428, 285, 142 })]
    [InlineData("trailing", 1, 7, new long[] { 999, 856, 713, 570, 428, 285, 142 })]
    [InlineData("linspace", 0, 7, new long[] { 999, 832, 666, 500, 333, 166, 0 })]
    [InlineData("linspace", 1, 7, new long[] { 999, 832, 666, 500, 333, 166, 0 })]
    [InlineData("linspace", 1, 1, new long[] { 0 })]
    [InlineData("trailing", 1, 1, new long[] { 999 })]
    public void SetTimesteps_Ddim_MatchesDiffusersSpacing(string spacing, int offset, int steps, long[] expected)
    {
        using var ddim = new DDIMScheduler(new DDIMSchedulerConfig { TimestepSpacing = spacing, StepsOffset = offset });
        Assert.Equal(Enumerable.Range(0, 1000).Reverse().Select(t => (long)t), ddim.Timesteps);
        ddim.SetTimesteps(steps);
        Assert.Equal(expected, ddim.Timesteps);
    }

    // Inverse: leading = arange(N) * (T // N) + steps_offset (ascending); trailing = round(arange(T, 0, -T/N)[::-1]) - 1.
    [Theory]
    [InlineData("leading", 0, 10, new long[] { 0, 100, 200, 300, 400, 500, 600, 700, 800, 900 })]
    [InlineData("leading", 1, 10, new long[] { 1, 101, 201, 301, 401, 501, 601, 701, 801, 901 })]
    [InlineData("trailing", 1, 10, new long[] { 99, 199, 299, 399, 499, 599, 699, 799, 899, 999 })]
    [InlineData("leading", 1, 7, new long[] { 1, 143, 285, 427, 569, 711, 853 })]
    [InlineData("trailing", 0, 7, new long[] { 142, 285, 428, 570, 713, 856, 999 })]
    public void SetTimesteps_Inverse_MatchesDiffusersSpacing(string spacing, int offset, int steps, long[] expected)
    {
        using var inverse = new DDIMInverseScheduler(new DDIMSchedulerConfig { TimestepSpacing = spacing, StepsOffset = offset });
        Assert.Equal(Enumerable.Range(0, 1000).Select(t => (long)t), inverse.Timesteps);
        inverse.SetTimesteps(steps);
        Assert.Equal(expected, inverse.Timesteps);
    }

    [Fact]
    public void SetTimesteps_TrailingQuirkAndErrors_AreDiffusers()
    {
        // numpy's float arange(1000, 0, -1000/61) has ceil(61.00000000000001) = 62 elements, the last ≈ −6e-13,
        // so diffusers yields 62 timesteps ending in -1. We reproduce the list and refuse to step at -1.
        using var ddim = new DDIMScheduler(new DDIMSchedulerConfig { TimestepSpacing = "trailing" });
        ddim.SetTimesteps(61);
        Assert.Equal(62, ddim.Timesteps.Length);
        Assert.Equal(999, ddim.Timesteps[0]);
        Assert.Equal(-1, ddim.Timesteps[^1]);
        using var x = zeros(1, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => ddim.Step(x, -1, x));

        Assert.Throws<ArgumentOutOfRangeException>(() => ddim.SetTimesteps(1001));
        using var inverse = new DDIMInverseScheduler(new DDIMSchedulerConfig { TimestepSpacing = "linspace" });
        Assert.Contains("'timestep_spacing'", Assert.Throws<InvalidDataException>(() => inverse.SetTimesteps(10)).Message);
        using var fresh = new DDIMScheduler(new DDIMSchedulerConfig());
        Assert.Throws<InvalidOperationException>(() => fresh.Step(x, 999, x));
    }

    [Fact]
    public void Step_Epsilon_MatchesHandComputedDdim()
    {
        using var scope = NewDisposeScope();
        using var ddim = new DDIMScheduler(Small());
        AssertValues([0.64f, 0.48f, 0.36f, 0.18f], ddim.AlphasCumprod);
        ddim.SetTimesteps(2);
        Assert.Equal([2L, 0L], ddim.Timesteps);

        // t = 2 → prev 0: x0 = (x − 0.8ε)/0.6, x_prev = 0.8·x0 + 0.6·ε.
        //   x = 1,   ε = 0.5: x0 = 1,  x_prev = 1.1;   x = 0.2, ε = 1: x0 = −1, x_prev = −0.2.
        var x = tensor(new[] { 1f, 0.2f });
        var eps = tensor(new[] { 0.5f, 1f });
        var step = ddim.Step(eps, 2, x);
        AssertValues([1f, -1f], step.PredOriginalSample);
        AssertValues([1.1f, -0.2f], step.PrevSample);

        // t = 0 → prev −2 → final alpha = ᾱ_0 (set_alpha_to_one false): x0 = (1 − 0.6·0.5)/0.8 = 0.875, x_prev = 0.8·0.875 + 0.6·0.5 = 1.
        var last = ddim.Step(eps.narrow(0, 0, 1), 0, x.narrow(0, 0, 1));
        AssertValues([0.875f], last.PredOriginalSample);
        AssertValues([1f], last.PrevSample);
        using var one = new DDIMScheduler(Small(setAlphaToOne: true));
        one.SetTimesteps(2);
        Assert.Equal(1f, one.FinalAlphaCumprod);
        AssertValues([0.875f], one.Step(eps.narrow(0, 0, 1), 0, x.narrow(0, 0, 1)).PrevSample); // x_prev = x0
    }

    [Fact]
    public void Step_WithEta_AddsTheGivenVarianceNoise()
    {
        using var scope = NewDisposeScope();
        using var ddim = new DDIMScheduler(Small());
        ddim.SetTimesteps(2);
        // σ² = (1 − 0.64)/(1 − 0.36) · (1 − 0.36/0.64) = 0.5625 · 0.4375 = 0.24609375; σ = 0.49607837;
        // direction coefficient √(1 − 0.64 − σ²) = √0.11390625 = 0.3375. x = 1, ε = 0.5 (x0 = 1), z = 1 and −2:
        //   x_prev = 0.8 + 0.16875 + σ·z.
        var x = tensor(new[] { 1f, 1f });
        var eps = tensor(new[] { 0.5f, 0.5f });
        var z = tensor(new[] { 1f, -2f });
        var step = ddim.Step(eps, 2, x, eta: 1, varianceNoise: z);
        AssertValues([0.96875f + 0.49607837f, 0.96875f - 2 * 0.49607837f], step.PrevSample);

        // η scales σ: η = 0.5 → σ = 0.24803918, σ² = 0.0615234375, direction √0.2984765625 = 0.54633009.
        var half = ddim.Step(eps, 2, x, eta: 0.5, varianceNoise: z);
        AssertValues([0.8f + 0.5f * 0.54633009f + 0.24803918f, 0.8f + 0.5f * 0.54633009f - 2 * 0.24803918f], half.PrevSample);

        // A seeded generator gives reproducible noise, and is refused together with explicit noise.
        using var g1 = new Generator(42);
        using var g2 = new Generator(42);
        TensorAssert.Close(ddim.Step(eps, 2, x, eta: 1, generator: g1).PrevSample, ddim.Step(eps, 2, x, eta: 1, generator: g2).PrevSample, 0, 0, "seeded η noise");
        using var g3 = new Generator(1);
        Assert.Throws<ArgumentException>(() => ddim.Step(eps, 2, x, eta: 1, generator: g3, varianceNoise: z));
    }

    [Fact]
    public void Step_VPredictionSampleAndClipping_MatchHandComputedValues()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new[] { 1f });

        // v: x0 = √ᾱ·x − √(1−ᾱ)·v = 0.6 − 0.8·0.5 = 0.2; ε = √ᾱ·v + √(1−ᾱ)·x = 0.3 + 0.8 = 1.1; x_prev = 0.8·0.2 + 0.6·1.1 = 0.82.
        using (var v = new DDIMScheduler(Small(DDIMSchedulerConfig.VPrediction)))
        {
            v.SetTimesteps(2);
            var step = v.Step(tensor(new[] { 0.5f }), 2, x);
            AssertValues([0.2f], step.PredOriginalSample);
            AssertValues([0.82f], step.PrevSample);
        }
        // sample: x0 = 0.25; ε = (1 − 0.6·0.25)/0.8 = 1.0625; x_prev = 0.8·0.25 + 0.6·1.0625 = 0.8375.
        using (var s = new DDIMScheduler(Small(DDIMSchedulerConfig.Sample)))
        {
            s.SetTimesteps(2);
            var output = tensor(new[] { 0.25f });
            var step = s.Step(output, 2, x);
            AssertValues([0.8375f], step.PrevSample);
            step.PredOriginalSample.Dispose();
            Assert.False(output.IsInvalid, "disposing a step's result must not dispose the caller's model output");
        }
        // clip_sample (range 0.5): x = 0.2, ε = 1 gives x0 = −1, clipped to −0.5; x_prev = 0.8·(−0.5) + 0.6·1 = 0.2.
        // With use_clipped_model_output ε is re-derived: (0.2 + 0.6·0.5)/0.8 = 0.625, so x_prev = −0.4 + 0.375 = −0.025.
        using (var c = new DDIMScheduler(Small(clip: true, clipRange: 0.5)))
        {
            c.SetTimesteps(2);
            var step = c.Step(tensor(new[] { 1f }), 2, tensor(new[] { 0.2f }));
            AssertValues([-0.5f], step.PredOriginalSample);
            AssertValues([0.2f], step.PrevSample);
            AssertValues([-0.025f], c.Step(tensor(new[] { 1f }), 2, tensor(new[] { 0.2f }), useClippedModelOutput: true).PrevSample);
        }
    }

    [Fact]
    public void Step_Thresholding_ClampsToThePerSampleQuantile()
    {
        using var scope = NewDisposeScope();
        // |x0| = [0.5, 3, 2, 1]; its median (linear interpolation) is 1.5, within [1, 2.5], so x0 → clamp(x0, ±1.5)/1.5.
        var config = Small(DDIMSchedulerConfig.Sample) with { Thresholding = true, DynamicThresholdingRatio = 0.5, SampleMaxValue = 2.5 };
        using var ddim = new DDIMScheduler(config);
        ddim.SetTimesteps(2);
        var x0 = tensor(new[] { 0.5f, -3f, 2f, 1f }).reshape(1, 1, 2, 2);
        var step = ddim.Step(x0, 2, ones(1, 1, 2, 2));
        AssertValues([1f / 3, -1f, 1f, 2f / 3], step.PredOriginalSample);
    }

    [Theory]
    [InlineData(DDIMSchedulerConfig.Epsilon)]
    [InlineData(DDIMSchedulerConfig.VPrediction)]
    [InlineData(DDIMSchedulerConfig.Sample)]
    public void Step_WithTheTrueModelOutput_LandsOnTheForwardProcessAtThePreviousTimestep(string prediction)
    {
        using var scope = NewDisposeScope();
        using var ddim = new DDIMScheduler(TinyAConfig() with { PredictionType = prediction });
        ddim.SetTimesteps(10);
        using var g = new Generator(3);
        var x0 = randn([2, 4, 8, 8], generator: g);
        var eps = randn([2, 4, 8, 8], generator: g);
        foreach (long t in new long[] { 901, 501, 101 })
        {
            var timesteps = tensor(new[] { t, t });
            var xt = ddim.AddNoise(x0, eps, timesteps);
            var modelOutput = prediction switch
            {
                DDIMSchedulerConfig.Epsilon => eps,
                DDIMSchedulerConfig.VPrediction => ddim.GetVelocity(x0, eps, timesteps),
                _ => x0,
            };
            var step = ddim.Step(modelOutput, t, xt);
            TensorAssert.Close(x0, step.PredOriginalSample, 2e-5, 1e-5, $"{prediction}: x0 at t={t}");
            var expected = ddim.AddNoise(x0, eps, tensor(new[] { t - 100, t - 100 }));
            TensorAssert.Close(expected, step.PrevSample, 2e-5, 1e-5, $"{prediction}: x_prev at t={t}");
        }
    }

    [Fact]
    public void AddNoiseAndVelocity_UsePerSampleTimesteps()
    {
        using var scope = NewDisposeScope();
        using var ddim = new DDIMScheduler(TinyAConfig());
        var alphas = ddim.AlphasCumprod.data<float>().ToArray();
        var x0 = tensor(new[] { 1f, 2f, -1f }).reshape(3, 1, 1, 1).expand(3, 2, 1, 1).contiguous();
        var eps = tensor(new[] { 0.5f, -1f, 3f }).reshape(3, 1, 1, 1).expand(3, 2, 1, 1).contiguous();
        long[] ts = [0, 500, 999];
        var noisy = ddim.AddNoise(x0, eps, tensor(ts));
        var velocity = ddim.GetVelocity(x0, eps, tensor(ts));
        float[] x = [1, 2, -1], e = [0.5f, -1, 3];
        for (int i = 0; i < 3; i++)
        {
            double a = alphas[ts[i]];
            double expectedNoisy = Math.Sqrt(a) * x[i] + Math.Sqrt(1 - a) * e[i];
            double expectedVelocity = Math.Sqrt(a) * e[i] - Math.Sqrt(1 - a) * x[i];
            Assert.Equal(expectedNoisy, noisy[i, 1, 0, 0].item<float>(), 5);
            Assert.Equal(expectedVelocity, velocity[i, 0, 0, 0].item<float>(), 5);
        }
        // One timestep for the whole batch broadcasts.
        TensorAssert.Close(ddim.AddNoise(x0, eps, tensor(new long[] { 500, 500, 500 })), ddim.AddNoise(x0, eps, tensor(500L)), 0, 0, "scalar timestep");
        Assert.Throws<ArgumentOutOfRangeException>(() => ddim.AddNoise(x0, eps, tensor(new long[] { 0, 1, 1000 })));
        Assert.Throws<ArgumentException>(() => ddim.AddNoise(x0, eps, tensor(new long[] { 0, 1 })));
    }

    [Fact]
    public void SampleTrainingTimesteps_IsUniformOverTheTrainingRange_AndSeeded()
    {
        using var scope = NewDisposeScope();
        using var ddim = new DDIMScheduler(new DDIMSchedulerConfig { NumTrainTimesteps = 10 });
        using var g1 = new Generator(5);
        using var g2 = new Generator(5);
        var a = ddim.SampleTrainingTimesteps(4000, g1);
        var b = ddim.SampleTrainingTimesteps(4000, g2);
        Assert.Equal(ScalarType.Int64, a.dtype);
        Assert.Equal([4000L], a.shape);
        Assert.True(a.eq(b).all().item<bool>());
        var counts = a.bincount(null).data<long>().ToArray();
        Assert.Equal(10, counts.Length); // every value 0..9 occurs, none outside
        Assert.All(counts, c => Assert.InRange(c, 300, 500));
    }

    [Fact]
    public void InverseStep_MatchesHandComputedIndices()
    {
        using var scope = NewDisposeScope();
        using var inverse = new DDIMInverseScheduler(TinyAConfig());
        inverse.SetTimesteps(10);
        var alphas = inverse.AlphasCumprod.data<float>().ToArray();
        var x = tensor(new[] { 0.3f });
        var eps = tensor(new[] { -0.7f });
        // (timestep, source alpha, target alpha): the first step starts from the initial alpha (ᾱ_0 here), later ones from t − 100.
        foreach (var (t, source) in new (long, double)[] { (1, alphas[0]), (101, alphas[1]), (901, alphas[801]) })
        {
            double target = alphas[t];
            double x0 = (0.3 - Math.Sqrt(1 - source) * -0.7) / Math.Sqrt(source);
            double expected = Math.Sqrt(target) * x0 + Math.Sqrt(1 - target) * -0.7;
            var step = inverse.Step(eps, t, x);
            Assert.Equal(x0, step.PredOriginalSample.item<float>(), 5);
            Assert.Equal(expected, step.PrevSample.item<float>(), 5);
        }
        double x0Initial = (0.3 - Math.Sqrt(1 - alphas[0]) * -0.7) / Math.Sqrt(alphas[0]);
        // set_alpha_to_one: the first step starts from ᾱ = 1, i.e. the sample is taken as clean.
        using var fromOne = new DDIMInverseScheduler(TinyAConfig() with { SetAlphaToOne = true });
        fromOne.SetTimesteps(10);
        Assert.Equal(1f, fromOne.InitialAlphaCumprod);
        Assert.Equal(Math.Sqrt(alphas[1]) * 0.3 + Math.Sqrt(1 - alphas[1]) * -0.7, fromOne.Step(eps, 1, x).PrevSample.item<float>(), 5);
        // One trailing step: the only timestep is 999 and its source is the initial alpha.
        using var few = new DDIMInverseScheduler(TinyAConfig() with { StepsOffset = 0, TimestepSpacing = "trailing" });
        few.SetTimesteps(1);
        Assert.Equal([999L], few.Timesteps);
        Assert.Equal(Math.Sqrt(alphas[999]) * x0Initial + Math.Sqrt(1 - alphas[999]) * -0.7, few.Step(eps, 999, x).PrevSample.item<float>(), 5);
    }

    [Fact]
    public void InversionThenDdim_WithAnExactNoiseOracle_StaysOnTheTrajectoryAndReconstructs()
    {
        using var scope = NewDisposeScope();
        using var ddim = new DDIMScheduler(TinyAConfig());
        using var inverse = new DDIMInverseScheduler(TinyAConfig());
        ddim.SetTimesteps(10);
        inverse.SetTimesteps(10);
        using var g = new Generator(11);
        var start = randn([1, 4, 8, 8], generator: g);
        var trueNoise = randn([1, 4, 8, 8], generator: g);
        // The inversion treats its input as a sample at level ᾱ_0 (initial_alpha_cumprod); the clean latent of that
        // trajectory is z, and a model that always answers trueNoise is exact for every point x_t = √ᾱ_t·z + √(1−ᾱ_t)·trueNoise.
        float a0 = inverse.InitialAlphaCumprod;
        var z = (start - trueNoise * MathF.Sqrt(1 - a0)) / MathF.Sqrt(a0);
        Tensor OnTrajectory(long t) => ddim.AddNoise(z, trueNoise, tensor(t));

        var x = start;
        foreach (long t in inverse.Timesteps)
        {
            x = inverse.Step(trueNoise, t, x).PrevSample;
            TensorAssert.Close(OnTrajectory(t), x, 1e-5, 1e-5, $"inverted latent at t={t}");
        }
        TensorAssert.Close(OnTrajectory(901), x, 1e-5, 1e-5, "inverted latent");
        for (int i = 0; i < ddim.Timesteps.Length; i++)
        {
            long t = ddim.Timesteps[i];
            x = ddim.Step(trueNoise, t, x).PrevSample;
            if (i + 1 < ddim.Timesteps.Length) TensorAssert.Close(OnTrajectory(ddim.Timesteps[i + 1]), x, 1e-5, 1e-5, $"denoised latent after t={t}");
        }
        TensorAssert.Close(start, x, 1e-5, 1e-5, "reconstruction");
    }

    [Fact]
    public void BetaSchedules_LinearCosineAndZeroSnr()
    {
        using var scope = NewDisposeScope();
        using (var linear = new DDIMScheduler(new DDIMSchedulerConfig()))
        {
            Assert.Equal(0.0001f, linear.Betas[0].item<float>());
            Assert.Equal(0.02f, linear.Betas[-1].item<float>());
            Assert.Equal(0.0001f + 0.0199f * 500 / 999, linear.Betas[500].item<float>(), 7);
        }
        using (var cosine = new DDIMScheduler(new DDIMSchedulerConfig { BetaSchedule = "squaredcos_cap_v2" }))
        {
            static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
            Assert.Equal((float)(1 - AlphaBar(0.001) / AlphaBar(0)), cosine.Betas[0].item<float>());
            Assert.Equal(0.999f, cosine.Betas[-1].item<float>()); // capped
        }
        using (var scaled = new DDIMScheduler(TinyAConfig()))
        using (var zeroSnr = new DDIMScheduler(TinyAConfig() with { RescaleBetasZeroSnr = true }))
        {
            Assert.Equal(0f, zeroSnr.AlphasCumprod[-1].item<float>(), 6);
            Assert.Equal(scaled.AlphasCumprod[0].item<float>(), zeroSnr.AlphasCumprod[0].item<float>(), 6);
        }
    }
}
