using DiffII.Diffusion.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Models;

// Seeds the global generator, so it must not run beside tests that draw from it.
[Collection(nameof(GlobalRngCollection))]
public class PointwiseConv2dTests
{
    [Fact]
    public void HasTheConvsKeysShapesAndSeededInit()
    {
        manual_seed(5);
        using var conv = nn.Conv2d(6, 10, 1);
        manual_seed(5);
        using var pointwise = new PointwiseConv2d(6, 10);
        var expected = conv.state_dict();
        var got = pointwise.state_dict();
        Assert.Equal(expected.Keys.Order(), got.Keys.Order());
        foreach (var (key, value) in expected)
        {
            Assert.Equal(value.shape, got[key].shape);
            Assert.True(value.eq(got[key]).all().item<bool>(), $"{key} is initialised as nn.Conv2d initialises it");
        }
    }

    [Fact]
    public void OnTokens_ComputesThe1x1ConvOfTheFeatureMap()
    {
        using var _ = no_grad();
        using var conv = nn.Conv2d(6, 10, 1);
        using var pointwise = new PointwiseConv2d(6, 10);
        pointwise.load_state_dict(conv.state_dict());
        using var generator1 = new Generator(1);
        var map = randn(2, 6, 3, 5, generator: generator1);
        var expected = conv.call(map).permute(0, 2, 3, 1).reshape(2, 15, 10);
        var got = pointwise.call(map.permute(0, 2, 3, 1).reshape(2, 15, 6));
        TensorAssert.Close(expected, got, 1e-6, 1e-5, "1×1 conv as matmul");
        Assert.Throws<ArgumentException>(() => pointwise.call(randn(2, 15, 7)));
    }

    [Fact]
    public void WithoutBias_HasOnlyAWeight()
    {
        using var pointwise = new PointwiseConv2d(4, 3, hasBias: false);
        Assert.Equal(["weight"], pointwise.state_dict().Keys);
        Assert.Equal(new long[] { 3, 4, 1, 1 }, pointwise.weight.shape);
    }
}
