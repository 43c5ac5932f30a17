using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using BatchNorm2d = DiffII.Diffusion.Models.BatchNorm2d;

namespace DiffII.Diffusion.Tests.Runtime;

/// <summary>
/// HeldTensors keeps a thread's temporaries alive while libtorch uses them, and changes nothing else: what it held
/// ends up where it would have been without it. Runs alone, beside a thread that forces garbage collections.
/// </summary>
[Collection(nameof(GarbageCollectionPressureCollection))]
public class HeldTensorsTests
{
    [Fact]
    public void TemporaryChains_StayExact_WhileAnotherThreadCollectsGarbage()
    {
        TorchRuntime.EnsureLoaded();
        var x = rand(64, 64);
        float expected = x.Clamp(-1, 1).Add(1).Mul(127.5).round().sum().item<float>();
        using var pressure = new CollectingThread();
        int wrong = 0;
        using (HeldTensors.Hold())
            for (int i = 0; i < 20_000; i++)
            {
                using var loop = NewDisposeScope();
                // Unheld, this chain summed wrong or crashed the process within 200 000 iterations (2026-12-06): the
                // wrappers of detach() and to() are unreachable while the next call runs.
                if (x.detach().to(ScalarType.Float32, CPU).Clamp(-1, 1).Add(1).Mul(127.5).round().sum().item<float>() != expected) wrong++;
            }
        Assert.Equal(0, wrong);
        Assert.True(pressure.Collections > 10, $"only {pressure.Collections} collections ran; the test exercised nothing");
    }

    [Fact]
    public void Inside_NoTensorIsMadeOutsideAScope()
    {
        TorchRuntime.EnsureLoaded();
        var statistics = DisposeScopeManager.Statistics;
        long before = statistics.CreatedOutsideScopeCount;
        using (HeldTensors.Hold())
            _ = ones(3).Add(1).Mul(2).sum().item<float>();
        Assert.Equal(before, statistics.CreatedOutsideScopeCount);
        _ = ones(3).Add(1);
        Assert.Equal(before + 2, statistics.CreatedOutsideScopeCount);
    }

    [Fact]
    public void WhatItHeld_GoesWhereItWouldHaveBeen_AndNothingIsDisposed()
    {
        TorchRuntime.EnsureLoaded();
        // No enclosing scope: the tensors go back to the GC, alive; a module made inside keeps its buffers (a plain
        // dispose scope would have disposed them, and its state_dict would come back empty).
        Tensor free;
        BatchNorm2d norm;
        using (HeldTensors.Hold())
        {
            free = ones(2).Mul(3);
            norm = new BatchNorm2d(3);
            norm.forward(rand(4, 3, 2, 2));
        }
        Assert.Equal(6f, free.sum().item<float>());
        Assert.Equal(5, norm.state_dict().Count);
        Assert.All(norm.state_dict().Values, t => Assert.False(t.IsInvalid));

        // An enclosing scope: the tensors move into it and are disposed with it, as if made there directly.
        Tensor scoped;
        using (var outer = NewDisposeScope())
        {
            using (HeldTensors.Hold())
                scoped = ones(2).Mul(3);
            Assert.False(scoped.IsInvalid);
            Assert.Contains(scoped, outer.DisposablesView);
        }
        Assert.True(scoped.IsInvalid);
    }
}
