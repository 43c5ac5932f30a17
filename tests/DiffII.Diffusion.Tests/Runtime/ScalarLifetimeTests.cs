using BatchNorm2d = DiffII.Diffusion.Models.BatchNorm2d;
using DiffII.Diffusion.Runtime;
using Training = DiffII.Diffusion.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Runtime;

/// <summary>
/// KeptScalars, the optimizers and BatchNorm2d that keep their Scalars alive: the same numbers as TorchSharp's own
/// code, and still the right numbers while another thread forces garbage collections. Runs alone, because the
/// collecting thread would slow every other test.
/// </summary>
[Collection(nameof(GarbageCollectionPressureCollection))]
public class ScalarLifetimeTests
{
    [Fact]
    public void ThisTestAssembly_PassesLibtorchNoScalarThatNothingKeepsAlive() =>
        // This class compares with TorchSharp's own AdamW, SGD and BatchNorm2d on purpose, in a collection of its own.
        TemporaryScalarScan.AssertNone([typeof(ScalarLifetimeTests).Assembly.Location], typeof(ScalarLifetimeTests).FullName!);

    [Fact]
    public void KeptScalarArithmetic_StaysExact_WhileAnotherThreadCollectsGarbage()
    {
        TorchRuntime.EnsureLoaded();
        using var pressure = new CollectingThread();
        var x = ones(257).Mul(3.0);
        int wrong = 0;
        for (int i = 0; i < 20_000; i++)
        {
            using var scope = NewDisposeScope();
            // (3 + 3·2) · 0.5 − 1 = 3.5, clamp to [0, 3] → 3, then 1 − 3 = −2; in place: −2 + 2·(−2) = −6.
            var y = x.Add(x, 2.0).Mul(0.5).Sub(1.0).Clamp(0, 3).Rsub(1.0);
            y.Add_(y, 2.0);
            if (!y.Eq(-6).all().item<bool>()) wrong++;
        }
        Assert.Equal(0, wrong);
        Assert.True(pressure.Collections > 10, $"only {pressure.Collections} collections ran; the test exercised nothing");
    }

    [Fact]
    public void OurAdamW_MatchesTorchSharpsAdamW_BitForBit_AndUnderCollectionPressure()
    {
        var reference = Train(ps => optim.AdamW(ps, lr: 0.01, beta1: 0.9, beta2: 0.99, weight_decay: 0.05), pressure: false);
        var kept = Train(ps => new Training.AdamW(ps, lr: 0.01, beta1: 0.9, beta2: 0.99, weight_decay: 0.05), pressure: false);
        var keptUnderPressure = Train(ps => new Training.AdamW(ps, lr: 0.01, beta1: 0.9, beta2: 0.99, weight_decay: 0.05), pressure: true);
        Assert.Equal(reference, kept);
        Assert.Equal(reference, keptUnderPressure);
    }

    [Theory]
    [InlineData(0.0, 0.0, false)]
    [InlineData(0.9, 0.01, false)]
    [InlineData(0.9, 0.0, true)]
    public void OurSgd_MatchesTorchSharpsSgd_BitForBit(double momentum, double weightDecay, bool nesterov)
    {
        var reference = Train(ps => optim.SGD(ps, 0.05, momentum: momentum, weight_decay: weightDecay, nesterov: nesterov), pressure: false);
        var kept = Train(ps => new Training.SGD(ps, 0.05, momentum: momentum, weight_decay: weightDecay, nesterov: nesterov), pressure: true);
        Assert.Equal(reference, kept);
    }

    [Fact]
    public void OurAdamW_ResumesFromACheckpointOfTorchSharpsAdamW()
    {
        TorchRuntime.EnsureLoaded();
        string path = Path.Combine(Path.GetTempPath(), $"diffii-adamw-{Guid.NewGuid():N}.bin");
        try
        {
            var (model, data) = Problem();
            var original = optim.AdamW(model.parameters(), lr: 0.01);
            Steps(model, original, data, 3);
            original.save_state_dict(path);
            var resumed = new Training.AdamW(model.parameters(), lr: 0.01);
            resumed.load_state_dict(path);
            Assert.True(resumed.state_dict().State.Zip(original.state_dict().State).All(p => p.First.ApproximatelyEquals(p.Second)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BatchNorm2d_MatchesTorchSharpsBatchNorm2d_InTrainingAndEvaluation_WithTheSameStateDictKeys()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        var ours = new BatchNorm2d(6);
        var theirs = nn.BatchNorm2d(6);
        Assert.Equal(theirs.state_dict().Keys.Order(), ours.state_dict().Keys.Order());
        using var generator = new Generator(11);
        for (int step = 0; step < 3; step++)
        {
            var x = randn([4, 6, 5, 5], generator: generator).Mul(2).Add(1);
            TensorAssert.Close(theirs.call(x), ours.call(x), 0, 0, $"training output, step {step}");
        }
        Assert.Equal(3L, ours.num_batches_tracked.item<long>());
        TensorAssert.Close(theirs.running_mean!, ours.running_mean, 0, 0, "running_mean");
        TensorAssert.Close(theirs.running_var!, ours.running_var, 0, 0, "running_var");
        ours.eval();
        theirs.eval();
        var probe = randn([2, 6, 3, 3], generator: generator);
        TensorAssert.Close(theirs.call(probe), ours.call(probe), 0, 0, "evaluation output");
        Assert.Throws<ArgumentException>(() => { ours.call(randn(2, 5, 3, 3)); });
    }

    static (nn.Module<Tensor, Tensor> Model, Tensor[] Data) Problem()
    {
        using var generator = new Generator(5);
        var model = nn.Sequential(("0", nn.Linear(6, 8)), ("1", nn.Tanh()), ("2", nn.Linear(8, 1)));
        using (no_grad())
            foreach (var p in model.parameters())
                p.copy_(randn(p.shape, generator: generator).Mul(0.3));
        var x = randn([32, 6], generator: generator);
        return (model, [x, x.sum(1, keepdim: true).sin()]);
    }

    static void Steps(nn.Module<Tensor, Tensor> model, optim.Optimizer optimizer, Tensor[] data, int steps)
    {
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            nn.functional.mse_loss(model.call(data[0]), data[1]).backward();
            optimizer.step();
        }
    }

    /// <summary>Trains a small fixed problem for 40 steps and returns every parameter's values.</summary>
    static float[] Train(Func<IEnumerable<Parameter>, optim.Optimizer> makeOptimizer, bool pressure)
    {
        TorchRuntime.EnsureLoaded();
        using var collecting = pressure ? new CollectingThread() : null;
        var (model, data) = Problem();
        Steps(model, makeOptimizer(model.parameters()), data, 40);
        return model.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();
    }
}

[CollectionDefinition(nameof(GarbageCollectionPressureCollection), DisableParallelization = true)]
public sealed class GarbageCollectionPressureCollection;
