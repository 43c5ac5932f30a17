using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Schedulers;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Schedulers;

public class DDIMSchedulerTests
{
    static DDIMSchedulerConfig TinyA => DDIMSchedulerConfig.FromFile(SharedData.TinyA("scheduler", "scheduler_config.json"));
    static Tensor Golden(string key) { using var f = SafeTensorsFile.Open(SharedData.TinyA("golden.safetensors")); return f.Load(key); }

    [Fact]
    public void TimestepsAndAlphas_EqualDiffusers()
    {
        var s = new DDIMScheduler(TinyA);
        s.SetTimesteps(10);
        Assert.Equal(Golden("sched.timesteps").data<long>().ToArray(), s.Timesteps);
        TensorAssert.Close(Golden("sched.alphas_cumprod"), s.Schedule.AlphasCumprodTensor(), 1e-6, 1e-5, "alphas_cumprod");
        var inv = new DDIMInverseScheduler(TinyA);
        inv.SetTimesteps(10);
        Assert.Equal(Golden("inv.timesteps").data<long>().ToArray(), inv.Timesteps);
    }

    [Theory]
    [InlineData("leading", 1, 10, new long[] { 901, 801, 701, 601, 501, 401, 301, 201, 101, 1 })]
    [InlineData("leading", 0, 7, new long[] { 852, 710, 568, 426, 284, 142, 0 })]
    [InlineData("trailing", 1, 10, new long[] { 999, 899, 799, 699, 599, 499, 399, 299, 199, 99 })]
    [InlineData("trailing", 0, 7, new long[] { 999, 856, 713, 570, 428, 285, 142 })]
    [InlineData("linspace", 1, 10, new long[] { 999, 888, 777, 666, 555, 444, 333, 222, 111, 0 })]
    [InlineData("linspace", 0, 7, new long[] { 999, 832, 666, 500, 333, 166, 0 })]
    public void Spacing_FollowsDiffusers(string spacing, int offset, int steps, long[] expected)
    {
        var s = new DDIMScheduler(new DDIMSchedulerConfig { TimestepSpacing = spacing, StepsOffset = offset });
        s.SetTimesteps(steps);
        Assert.Equal(expected, s.Timesteps);
        if (spacing != "linspace")
        {
            var inv = new DDIMInverseScheduler(new DDIMSchedulerConfig { TimestepSpacing = spacing, StepsOffset = offset });
            inv.SetTimesteps(steps);
            Assert.Equal(expected.Reverse(), inv.Timesteps);
        }
    }

    [Theory]
    [InlineData("epsilon")]
    [InlineData("v_prediction")]
    [InlineData("sample")]
    public void StepWithTheTrueModelOutput_LandsOnTheForwardProcessAtThePreviousLevel(string prediction)
    {
        var config = TinyA with { PredictionType = prediction };
        var s = new DDIMScheduler(config);
        s.SetTimesteps(10);
        using var g = new Generator(11);
        var x0 = randn([2, 4, 8, 8], generator: g);
        var eps = randn([2, 4, 8, 8], generator: g);
        long t = s.Timesteps[3], prev = s.Timesteps[4];
        var noisyAt = (long step) => TrainingNoise.AddNoise(s.Schedule, x0, eps, KeptScalars.Full([2], step, ScalarType.Int64));
        var output = TrainingNoise.Target(s.Schedule, x0, eps, KeptScalars.Full([2], t, ScalarType.Int64));
        var result = s.Step(output, t, noisyAt(t));
        TensorAssert.Close(noisyAt(prev), result.PrevSample, 1e-5, 1e-5, $"{prediction}: x_prev");
        TensorAssert.Close(x0, result.PredOriginalSample, 1e-4, 1e-4, $"{prediction}: x0");

        // The inverse step goes back up, exactly, with the same oracle.
        var inv = new DDIMInverseScheduler(config);
        inv.SetTimesteps(10);
        var up = inv.Step(TrainingNoise.Target(s.Schedule, x0, eps, KeptScalars.Full([2], prev, ScalarType.Int64)), t, noisyAt(prev));
        TensorAssert.Close(noisyAt(t), up.PrevSample, 1e-5, 1e-5, $"{prediction}: inverse step");
    }

    [Fact]
    public void LastStep_UsesTheFinalAlpha_ThatSetAlphaToOneChooses()
    {
        foreach (bool one in new[] { true, false })
        {
            var s = new DDIMScheduler(TinyA with { SetAlphaToOne = one });
            s.SetTimesteps(10);
            var x = ones(1, 4);
            var eps = zeros(1, 4);
            long t = s.Timesteps[^1];
            var prev = s.Step(eps, t, x).PrevSample;
            double expected = Math.Sqrt(one ? 1.0 : s.Schedule.AlphasCumprod[0]) / Math.Sqrt(s.Schedule.AlphasCumprod[t]);
            Assert.Equal(expected, prev[0, 0].item<float>(), 5);
        }
    }

    [Fact]
    public void EtaAddsScaledVarianceNoise_AndClipSampleClampsX0()
    {
        var s = new DDIMScheduler(TinyA with { ClipSample = true, ClipSampleRange = 1.0 });
        s.SetTimesteps(10);
        long t = s.Timesteps[2], prev = s.Timesteps[3];
        var sample = KeptScalars.Full([1, 4], 3.0);
        var output = KeptScalars.Full([1, 4], (double)0.1f);
        var noise = KeptScalars.Full([1, 4], 0.5);
        var result = s.Step(output, t, sample, eta: 1.0, varianceNoise: noise);
        double a = s.Schedule.AlphasCumprod[t], ap = s.Schedule.AlphasCumprod[prev];
        double x0 = Math.Clamp((3.0 - Math.Sqrt(1 - a) * 0.1) / Math.Sqrt(a), -1, 1);
        double variance = (1 - ap) / (1 - a) * (1 - a / ap);
        double expected = Math.Sqrt(ap) * x0 + Math.Sqrt(1 - ap - variance) * 0.1 + Math.Sqrt(variance) * 0.5;
        Assert.Equal(1.0f, result.PredOriginalSample[0, 0].item<float>());
        Assert.Equal(expected, result.PrevSample[0, 0].item<float>(), 5);
    }

    [Fact]
    public void Sd15PndmConfig_IsReadAsDdim_AndBadValuesAreNamed()
    {
        var sd15 = DDIMSchedulerConfig.FromFile(SharedData.Path("data", "sd-configs", "sd15", "scheduler", "scheduler_config.json"));
        Assert.Equal("scaled_linear", sd15.BetaSchedule);
        Assert.Equal(1, sd15.StepsOffset);
        var sd21 = DDIMSchedulerConfig.FromFile(SharedData.Path("data", "sd-configs", "sd21", "scheduler", "scheduler_config.json"));
        Assert.Equal("v_prediction", sd21.PredictionType);
        Assert.Contains("beta_schedule 'cubic'", Assert.Throws<NotSupportedException>(() => DDIMSchedulerConfig.FromJson("""{"beta_schedule":"cubic"}""")).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DDIMScheduler(sd15).SetTimesteps(1001));
        var cosine = new NoiseSchedule(new DDIMSchedulerConfig { BetaSchedule = "squaredcos_cap_v2" });
        Assert.InRange(cosine.AlphasCumprod[^1], 0, 1e-4);
        var zeroSnr = new NoiseSchedule(TinyA with { RescaleBetasZeroSnr = true });
        Assert.Equal(0f, zeroSnr.AlphasCumprod[^1], 6);
        Assert.Equal(new NoiseSchedule(TinyA).AlphasCumprod[0], zeroSnr.AlphasCumprod[0], 6);
    }
}
