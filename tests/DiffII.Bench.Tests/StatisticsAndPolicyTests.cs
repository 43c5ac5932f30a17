using DiffII.Bench;

namespace DiffII.Bench.Tests;

public class StatisticsAndPolicyTests
{
    [Fact]
    public void Median_OfOddAndEvenCounts()
    {
        Assert.Equal(3, Statistics.Median([5, 1, 3]));
        Assert.Equal(2.5, Statistics.Median([4, 1, 3, 2]));
        Assert.Throws<ArgumentException>(() => Statistics.Median([]));
    }

    [Fact]
    public void Fit_RecoversAnExactLine_AndMeasuresScatter()
    {
        var exact = Statistics.Fit([1, 2, 3, 4], [5, 7, 9, 11]);
        Assert.Equal(2, exact.Slope, 12);
        Assert.Equal(3, exact.Intercept, 12);
        Assert.Equal(1, exact.RSquared, 12);
        Assert.Equal(13, exact.Predict(5), 12);

        // y = 0, 2, 1, 3 over x = 0..3: slope 0.8, intercept 0.3, R² = 1 − 1.8/5 = 0.64.
        var scattered = Statistics.Fit([0, 1, 2, 3], [0, 2, 1, 3]);
        Assert.Equal(0.8, scattered.Slope, 12);
        Assert.Equal(0.3, scattered.Intercept, 12);
        Assert.Equal(0.64, scattered.RSquared, 12);

        Assert.Equal(1, Statistics.Fit([1, 2, 3], [4, 4, 4]).RSquared);
        Assert.Throws<ArgumentException>(() => Statistics.Fit([1, 1], [2, 3]));
        Assert.Throws<ArgumentException>(() => Statistics.Fit([1], [2]));
    }

    [Fact]
    public void Repetitions_FillTheTarget_WithinTheBounds()
    {
        var policy = new RepetitionPolicy(MinRepetitions: 3, MaxRepetitions: 10, TargetSeconds: 8, WarmupBelowSeconds: 15);
        Assert.Equal(10, policy.RepetitionsFor(0.1));  // 80 would fill 8 s: capped
        Assert.Equal(4, policy.RepetitionsFor(2));
        Assert.Equal(3, policy.RepetitionsFor(10));    // at least the minimum
        Assert.Equal(2, policy.RepetitionsFor(60));    // slow calls: two are enough for a median and a min
    }

    [Fact]
    public void Budget_And_Memory_RefuseWhatWouldNotFit()
    {
        var budget = new TimeBudget(60);
        Assert.Null(budget.Refuse(10));
        Assert.Contains("time budget", budget.Refuse(600));
        Assert.Equal(40, BatchExtrapolation.Scale(10, 2, 8));
        Assert.Null(BatchExtrapolation.RefuseMemory(1L << 30, 8L << 30));
        Assert.Contains("available", BatchExtrapolation.RefuseMemory(8L << 30, 8L << 30));
        Assert.Null(BatchExtrapolation.RefuseMemory(1L << 40, null));
    }

    [Fact]
    public void Meminfo_KilobytesAreParsed() => Assert.Equal(123456L * 1024, MemoryProbe.ParseKilobytes("   123456 kB"));

    [Fact]
    public void Sampler_SeesTheResidentSetGrow()
    {
        using var sampler = new ResidentSetSampler(TimeSpan.FromMilliseconds(1));
        var block = new byte[64 << 20];
        Array.Fill(block, (byte)1); // touch every page
        Thread.Sleep(20);
        Assert.True(sampler.Peak - sampler.Start > 32 << 20, $"peak {sampler.Peak}, start {sampler.Start}");
        GC.KeepAlive(block);
    }
}
