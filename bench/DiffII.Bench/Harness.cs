using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>The timed calls of one case: per-call seconds and the resident set around them.</summary>
public sealed record Timing(IReadOnlyList<double> Seconds, long RssBefore, long PeakRss, int Warmups)
{
    public double Median => Statistics.Median(Seconds);
    public double Min => Seconds.Min();
    public long RssIncrease => Math.Max(0, PeakRss - RssBefore);
}

/// <summary>How many times to run a case.</summary>
public sealed record RepetitionPolicy(int MinRepetitions, int MaxRepetitions, double TargetSeconds, double WarmupBelowSeconds)
{
    public static RepetitionPolicy Quick { get; } = new(1, 5, 1.0, 2.0);
    public static RepetitionPolicy Full { get; } = new(3, 25, 6.0, 15.0);

    /// <summary>Repetitions for a call expected to take <paramref name="estimate"/> seconds: enough to fill the target, within the bounds; slow calls get at least 2.</summary>
    public int RepetitionsFor(double estimate)
    {
        if (estimate <= 0) return MinRepetitions;
        int wanted = (int)Math.Ceiling(TargetSeconds / estimate);
        int floor = estimate > 20 ? Math.Min(MinRepetitions, 2) : MinRepetitions;
        return Math.Clamp(wanted, floor, MaxRepetitions);
    }
}

/// <summary>
/// Runs a case: optional warm-up calls (untimed; skipped for slow calls, whose first-call costs are negligible
/// next to their run time), then timed calls with the device synchronised around each, while a background thread
/// samples the resident set. Every call runs in its own dispose scope, so tensors cannot pile up between calls.
/// </summary>
public sealed class Harness(Device device, RepetitionPolicy policy, TextWriter log)
{
    public RepetitionPolicy Policy => policy;
    public Device Device => device;

    public void Synchronise()
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize();
    }

    /// <summary>Times one call of <paramref name="run"/> (no warm-up, no repetition): for estimates and for counted runs.</summary>
    public double TimeOnce(Action run)
    {
        Synchronise();
        long start = Stopwatch.GetTimestamp();
        using (NewDisposeScope()) run();
        Synchronise();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>
    /// Times two alternatives in alternation (A, B, A, B …), so that a change in the machine's load during the
    /// measurement affects both alike; for before/after ratios.
    /// </summary>
    /// <param name="beforeA">Untimed preparation before each call of <paramref name="a"/> (e.g. switching a model's state).</param>
    public (Timing A, Timing B) MeasurePair(string labelA, Action a, string labelB, Action b, double estimate, Action? beforeA = null, Action? beforeB = null)
    {
        if (estimate < policy.WarmupBelowSeconds)
        {
            beforeA?.Invoke(); TimeOnce(a);
            beforeB?.Invoke(); TimeOnce(b);
        }
        int reps = policy.RepetitionsFor(estimate);
        var secondsA = new List<double>();
        var secondsB = new List<double>();
        using var sampler = new ResidentSetSampler();
        for (int i = 0; i < reps; i++)
        {
            beforeA?.Invoke();
            secondsA.Add(TimeOnce(a));
            beforeB?.Invoke();
            secondsB.Add(TimeOnce(b));
        }
        var ta = new Timing(secondsA, sampler.Start, sampler.Peak, 1);
        var tb = new Timing(secondsB, sampler.Start, sampler.Peak, 1);
        log.WriteLine($"  {labelA,-44} median {Format.Seconds(ta.Median),9}  min {Format.Seconds(ta.Min),9}  ×{reps}");
        log.WriteLine($"  {labelB,-44} median {Format.Seconds(tb.Median),9}  min {Format.Seconds(tb.Min),9}  ×{reps}  (interleaved)");
        return (ta, tb);
    }

    /// <param name="estimate">Expected seconds per call (e.g. from a counted warm-up run), used to choose warm-ups and repetitions.</param>
    public Timing Measure(string label, Action run, double estimate)
    {
        int warmups = estimate < policy.WarmupBelowSeconds ? 1 : 0;
        for (int i = 0; i < warmups; i++) TimeOnce(run);
        int reps = policy.RepetitionsFor(estimate);
        var seconds = new List<double>();
        using var sampler = new ResidentSetSampler();
        for (int i = 0; i < reps; i++) seconds.Add(TimeOnce(run));
        var timing = new Timing(seconds, sampler.Start, sampler.Peak, warmups);
        log.WriteLine($"  {label,-44} median {Format.Seconds(timing.Median),9}  min {Format.Seconds(timing.Min),9}  ×{seconds.Count}  peak RSS {Format.Bytes(timing.PeakRss)}");
        return timing;
    }
}

/// <summary>Number formatting shared by the log and the summary.</summary>
public static class Format
{
    public static string Seconds(double s) =>
        s >= 100 ? $"{s:F0} s" : s >= 1 ? $"{s:F2} s" : s >= 1e-3 ? $"{s * 1e3:F1} ms" : $"{s * 1e6:F0} µs";

    public static string Bytes(long b) =>
        b >= 1L << 30 ? $"{b / (double)(1L << 30):F2} GiB" : b >= 1L << 20 ? $"{b / (double)(1L << 20):F0} MiB" : $"{b / 1024.0:F0} KiB";

    public static string Rate(double? r) => r is double v ? (v >= 100 ? $"{v:F0}" : v >= 10 ? $"{v:F1}" : $"{v:F2}") : "–";

    public static string Percent(double? f) => f is double v ? $"{v * 100:F0} %" : "–";
}
