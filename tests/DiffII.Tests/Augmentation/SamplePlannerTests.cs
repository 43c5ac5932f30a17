using DiffII.Augmentation;

namespace DiffII.Tests.Augmentation;

public class SamplePlannerTests
{
    static readonly ClassImages[] Classes =
    [
        new("cat", ["c1", "c2", "c3"]),
        new("dog", ["d1", "d2"]),
        new("owl", ["o1"]),
    ];

    static readonly IReadOnlyList<string>[] Pools = [["c1", "c2", "c3"], ["d1", "d2"], ["o1", "o1#mirror"]];

    [Fact]
    public void DiffII_PlansExpansionTimesImages_WithTwoDistinctSourcesOfTheClass_AndAFullCirclePhase()
    {
        var plan = SamplePlanner.Plan(Classes, new PlanOptions { Suffixes = ["on a branch.", "in water."], Seed = 1 }, Pools);
        Assert.Equal(5 * 6, plan.Count);
        Assert.Equal([15, 10, 5], Enumerable.Range(0, 3).Select(c => plan.Count(p => p.ClassIndex == c)).ToArray());
        Assert.All(plan, p =>
        {
            Assert.Equal(2, p.Sources.Count);
            Assert.NotEqual(p.Sources[0], p.Sources[1]);
            Assert.All(p.Sources, s => Assert.Contains(s, Pools[p.ClassIndex]));
            Assert.InRange(p.Phi!.Value, 0, 2 * Math.PI);
            Assert.NotNull(p.Suffix);
            Assert.Equal(0.3, p.SplitRatio);
        });
        Assert.Equal(plan.Count, plan.Select(p => p.Id).Distinct().Count());
        Assert.Contains(plan, p => p.Phi > Math.PI); // extrapolation happens
    }

    [Fact]
    public void Plan_IsDeterministic_AndEachClassIsIndependentOfTheOthers()
    {
        var options = new PlanOptions { Suffixes = ["x."], Seed = 42 };
        Assert.Equal(SamplePlanner.Plan(Classes, options, Pools), SamplePlanner.Plan(Classes, options, Pools), new PlanComparer());
        var withoutDogs = SamplePlanner.Plan([Classes[0]], options, [Pools[0]]);
        Assert.Equal(withoutDogs, SamplePlanner.Plan(Classes, options, Pools).Where(p => p.ClassIndex == 0), new PlanComparer());
        var otherSeed = SamplePlanner.Plan(Classes, options with { Seed = 43 }, Pools);
        Assert.NotEqual(SamplePlanner.Plan(Classes, options, Pools).Select(p => p.Phi), otherSeed.Select(p => p.Phi));
    }

    [Fact]
    public void LongTailBudget_LiftsEachClassToTheTarget()
    {
        var plan = SamplePlanner.Plan(Classes, new PlanOptions { Strategy = Strategy.RealGuidance, Budget = new SampleBudget.TargetCount(3) });
        Assert.Equal([0, 1, 2], Enumerable.Range(0, 3).Select(c => plan.Count(p => p.ClassIndex == c)).ToArray());
        Assert.All(plan, p => Assert.Equal(0.1, p.Strength));
    }

    [Fact]
    public void DiffMix_PromptsAnotherClass_WithSoftLabelsSummingToOne()
    {
        var plan = SamplePlanner.Plan(Classes, new PlanOptions { Strategy = Strategy.DiffMix, Seed = 5 });
        Assert.All(plan, p =>
        {
            Assert.NotEqual(p.ClassIndex, p.PromptClassIndex);
            Assert.Contains(p.Strength!.Value, new[] { 0.5, 0.7, 0.9 });
            Assert.Equal(1f, p.Labels.Sum(l => l.Weight), 5);
            Assert.Equal((float)Math.Sqrt(p.Strength.Value), p.Labels.Single(l => l.ClassIndex == p.PromptClassIndex).Weight, 5);
            Assert.Null(p.Suffix);
        });
    }

    [Fact]
    public void TwoStageOnly_HasNoSources_DAFusionDrawsItsFourStrengths()
    {
        var two = SamplePlanner.Plan(Classes, new PlanOptions { Strategy = Strategy.TwoStageOnly, Suffixes = ["x."] });
        Assert.All(two, p => { Assert.Empty(p.Sources); Assert.Null(p.Phi); Assert.Equal("x.", p.Suffix); });
        var da = SamplePlanner.Plan(Classes, new PlanOptions { Strategy = Strategy.DAFusion, Budget = new SampleBudget.Expansion(20) });
        Assert.Equal([0.25, 0.5, 0.75, 1.0], da.Select(p => p.Strength!.Value).Distinct().Order().ToArray());
        Assert.All(da, p => Assert.Contains(p.Sources.Single(), Classes[p.ClassIndex].ImageIds));
    }

    [Fact]
    public void BadInputs_AreRefusedWithTheReason()
    {
        Assert.Contains("'empty'", Assert.Throws<ArgumentException>(() => SamplePlanner.Plan([new ClassImages("empty", [])], new PlanOptions { Strategy = Strategy.RealGuidance })).Message);
        Assert.Contains("suffix", Assert.Throws<ArgumentException>(() => SamplePlanner.Plan(Classes, new PlanOptions(), Pools)).Message);
        Assert.Contains("'owl' has 1", Assert.Throws<ArgumentException>(() => SamplePlanner.Plan(Classes, new PlanOptions { SplitRatio = 0 }, [Pools[0], Pools[1], ["o1"]])).Message);
        Assert.Contains("two classes", Assert.Throws<ArgumentException>(() => SamplePlanner.Plan([Classes[0]], new PlanOptions { Strategy = Strategy.DiffMix })).Message);
        Assert.Equal(Strategy.DAFusion, StrategyInfo.Parse("DA-Fusion"));
        Assert.Contains("diff-ii", Assert.Throws<ArgumentException>(() => StrategyInfo.Parse("magic")).Message);
    }

    sealed class PlanComparer : IEqualityComparer<PlannedSample>
    {
        public bool Equals(PlannedSample? a, PlannedSample? b) =>
            a!.Id == b!.Id && a.Sources.SequenceEqual(b.Sources) && a.Phi == b.Phi && a.Suffix == b.Suffix && a.Seed == b.Seed && a.Strength == b.Strength;
        public int GetHashCode(PlannedSample p) => p.Id.GetHashCode();
    }

    [Fact]
    public void Planning_StopsWhenCancelled()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var options = new PlanOptions { Strategy = Strategy.RealGuidance, Budget = new SampleBudget.TargetCount(100_000) };
        Assert.Throws<OperationCanceledException>(() => SamplePlanner.Plan(Classes, options, cancellationToken: cancelled.Token));
        Assert.Equal(3 * 100_000 - 6, SamplePlanner.Plan(Classes, options).Count);   // a target counts the 6 originals
    }
}
