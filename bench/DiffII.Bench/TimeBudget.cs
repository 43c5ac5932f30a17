using System.Diagnostics;

namespace DiffII.Bench;

/// <summary>
/// Seconds a section of the benchmark may spend. Cases whose predicted cost would overrun it are skipped and
/// recorded as skipped (with the prediction), so a full run ends in predictable time instead of being cut off.
/// </summary>
public sealed class TimeBudget(double seconds)
{
    readonly Stopwatch _clock = Stopwatch.StartNew();

    public double Seconds => seconds;
    public double Remaining => seconds - _clock.Elapsed.TotalSeconds;

    /// <summary>Null when a case predicted to take <paramref name="predicted"/> seconds fits; otherwise why it is skipped.</summary>
    public string? Refuse(double predicted) =>
        predicted <= Remaining ? null : $"predicted {Format.Seconds(predicted)}, more than the {Format.Seconds(Math.Max(0, Remaining))} left of this section's time budget";
}

/// <summary>Predicts a stage's cost and memory at a batch from what the previous batch measured (both grow linearly with the batch).</summary>
public static class BatchExtrapolation
{
    public static double Scale(double measured, int measuredBatch, int batch) => measured * batch / Math.Max(1, measuredBatch);

    /// <summary>Null when the predicted extra resident memory fits in what the machine has available; otherwise why not.</summary>
    public static string? RefuseMemory(long predictedIncrease, long? availableBytes, double headroom = 0.85)
    {
        if (availableBytes is not long available) return null;
        return predictedIncrease <= available * headroom ? null
            : $"predicted {Format.Bytes(predictedIncrease)} more resident memory, over {headroom:P0} of the {Format.Bytes(available)} available";
    }
}
