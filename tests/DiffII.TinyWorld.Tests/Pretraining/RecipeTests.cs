using DiffII.Diffusion.Schedulers;
using DiffII.TinyWorld.Pretraining;
using static TorchSharp.torch;

namespace DiffII.TinyWorld.Tests.Pretraining;

public class RecipeTests
{
    [Fact]
    public void WarmupCosine_RisesLinearly_PeaksAfterWarmup_AndDecaysToTheFloor()
    {
        double Lr(int step) => LearningRateSchedule.WarmupCosine(step, totalSteps: 1000, warmupSteps: 100, peak: 1e-3, floor: 0.05);
        Assert.Equal(1e-5, Lr(0), 12);
        Assert.Equal(5e-4, Lr(49), 12);
        Assert.Equal(1e-3, Lr(100), 12);
        Assert.Equal(5e-5, Lr(1000), 12);
        for (int step = 100; step < 1000; step++) Assert.True(Lr(step + 1) <= Lr(step));
        Assert.Equal((1e-3 + 5e-5) / 2, Lr(550), 9);
    }

    [Fact]
    public void MinSnrWeights_AreOneWhereTheSnrIsBelowGamma_AndGammaOverSnrAbove()
    {
        var schedule = new NoiseSchedule(DDIMSchedulerConfig.FromJson(TinyModelConfigs.SchedulerJson));
        var timesteps = tensor(new long[] { 0, 10, 100, 500, 999 });
        var weights = TinyPretrainer.MinSnrWeights(schedule, timesteps, gamma: 5).data<float>().ToArray();
        var alphas = schedule.AlphasCumprod;
        for (int i = 0; i < 5; i++)
        {
            long t = timesteps[i].item<long>();
            double snr = alphas[t] / (1 - alphas[t]);
            Assert.Equal(Math.Min(snr, 5) / snr, weights[i], 4);
        }
        Assert.True(weights[0] < 0.01, "the nearly clean timestep must be weighted down");
        Assert.Equal(1f, weights[4], 5);
        Assert.All(TinyPretrainer.MinSnrWeights(schedule, timesteps, gamma: 0).data<float>().ToArray(), w => Assert.Equal(1f, w));
    }
}
