using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Divergence;

/// <summary>What a diverged training run says about where its numbers stopped being finite.</summary>
public class NonFiniteTraceTests
{
    /// <summary>Two layers with a functional step between them that is NaN for negative numbers.</summary>
    sealed class Chain : nn.Module<Tensor, Tensor>
    {
        public readonly Linear first = nn.Linear(2, 2, hasBias: false);
        public readonly Linear second = nn.Linear(2, 2, hasBias: false);

        public Chain() : base(nameof(Chain)) => RegisterComponents();

        public override Tensor forward(Tensor input) => second.call(first.call(input).log());
    }

    static Chain WithWeights(float[] first)
    {
        var chain = new Chain();
        using var _ = no_grad();
        chain.first.weight!.copy_(tensor(first).reshape(2, 2));
        chain.second.weight!.copy_(tensor(new float[] { 1, 0, 0, 1 }).reshape(2, 2));
        return chain;
    }

    [Fact]
    public void ANaNMadeBetweenTwoModules_IsPlacedBetweenThem()
    {
        using var chain = WithWeights([1, 0, 0, -1]);
        var input = tensor(new float[] { 1, 2 }).reshape(1, 2);
        string trace = NonFiniteTrace.Describe([("model", chain)], () => chain.call(input));
        Assert.Contains("Every weight is finite (largest |w| 1 in model.first.weight)", trace);
        Assert.Contains("first shows NaN at the input of model.second, made after model.first by an operation between the two", trace);
    }

    [Fact]
    public void AnOverflowInsideAModule_NamesThatModule()
    {
        using var chain = WithWeights([3e38f, 3e38f, 1, 1]);
        var input = tensor(new float[] { 1, 1 }).reshape(1, 2);
        string trace = NonFiniteTrace.Describe([("model", chain)], () => chain.call(input));
        Assert.Contains("first turns finite input into ±Infinity in model.first.", trace);
    }

    [Fact]
    public void NonFiniteWeightsAndGradients_AreListed_AndAFiniteRerunIsSaidToBeSo()
    {
        using var chain = WithWeights([1, 0, 0, 1]);
        using (no_grad()) chain.second.weight!.Fill_(double.NaN);
        var input = tensor(new float[] { 1, 2 }).reshape(1, 2);
        chain.call(input).sum().backward();
        string trace = NonFiniteTrace.Describe([("model", chain)], () => chain.first.call(input));
        Assert.Contains("Non-finite weights: model.second.weight.", trace);
        // The second layer's gradient is log(first(x)), finite; the NaN weights make the first layer's NaN.
        Assert.Contains("Non-finite gradients: model.first.weight.", trace);
        Assert.Contains("the forward pass stayed finite in every hooked module", trace);
    }

    [Fact]
    public void NonFiniteSteps_RetriesThreeTimes_AndSaysWhenTheNextTryStops()
    {
        var steps = new NonFiniteSteps((at, value) => new InvalidOperationException($"step {at}: {value}"));
        Assert.False(steps.Retry(0, 0.5, 1.0));
        for (int i = 0; i < NonFiniteSteps.MaxRetries; i++)
        {
            Assert.False(steps.Stops(double.NaN, 1.0));
            Assert.True(steps.Retry(4, double.NaN, 1.0));
        }
        Assert.True(steps.Stops(double.NaN, 1.0));
        Assert.False(steps.Stops(0.5, 1.0));
        Assert.Equal("step 5: Infinity", Assert.Throws<InvalidOperationException>(() => steps.Retry(4, 0.5, double.PositiveInfinity)).Message);
        Assert.Equal(1, steps.RetriedSteps);
    }
}
