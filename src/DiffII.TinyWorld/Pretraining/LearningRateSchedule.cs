using TorchSharp;

namespace DiffII.TinyWorld.Pretraining;

/// <summary>Linear warm-up to the peak learning rate, then cosine decay to <c>floor × peak</c> at the last step.</summary>
public static class LearningRateSchedule
{
    public static double WarmupCosine(int step, int totalSteps, int warmupSteps, double peak, double floor = 0.05)
    {
        if (warmupSteps > 0 && step < warmupSteps) return peak * (step + 1) / warmupSteps;
        double progress = totalSteps <= warmupSteps ? 1 : Math.Clamp((double)(step - warmupSteps) / (totalSteps - warmupSteps), 0, 1);
        return peak * (floor + (1 - floor) * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }

    /// <summary>Sets every parameter group of <paramref name="optimizer"/> to <paramref name="learningRate"/>.</summary>
    public static void Apply(torch.optim.Optimizer optimizer, double learningRate)
    {
        foreach (var group in optimizer.ParamGroups) group.LearningRate = learningRate;
    }
}
