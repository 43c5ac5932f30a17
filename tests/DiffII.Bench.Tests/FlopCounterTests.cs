using DiffII.Bench;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Bench.Tests;

public class FlopCounterTests
{
    [Fact]
    public void Formulas_MatchHandCountedMultiplyAdds()
    {
        // 3×3 conv, 3→4 channels, 5×5 output, batch 2: each output element is 3·9 multiply-adds.
        Assert.Equal(2L * 2 * 4 * 5 * 5 * (3 * 9), FlopFormulas.Conv2d(2, 3, 4, 1, 3, 3, 5, 5));
        // Depthwise-style groups: 4 groups of 1 input channel each.
        Assert.Equal(2L * 1 * 4 * 6 * 6 * (1 * 9), FlopFormulas.Conv2d(1, 4, 4, 4, 3, 3, 6, 6));
        Assert.Equal(2L * 14 * 16 * 32, FlopFormulas.Linear(14, 16, 32));
        // Q·Kᵀ and P·V: each 2 heads × 10 × 3 × 4 multiply-adds.
        Assert.Equal(2L * (2 * 10 * 3 * 4) * 2, FlopFormulas.Attention(1, 2, 10, 3, 4));
        Assert.Throws<ArgumentException>(() => FlopFormulas.Conv2d(1, 3, 4, 2, 3, 3, 5, 5));
    }

    [Fact]
    public void Conv2d_IsCountedFromTheShapeItReallyProduces()
    {
        using var _ = no_grad();
        using var conv = nn.Conv2d(3, 4, 3, stride: 2, padding: 1);
        using var counter = new FlopCounter(conv);
        using var y = conv.call(randn(2, 3, 5, 5)); // stride 2, pad 1: 3×3 output
        Assert.Equal(new long[] { 2, 4, 3, 3 }, y.shape);
        Assert.Equal(2L * 2 * 4 * 3 * 3 * (3 * 9), counter.ByCategory[FlopCategory.Convolution]);
        Assert.Equal(counter.ByCategory[FlopCategory.Convolution], counter.Total);
    }

    [Fact]
    public void Linear_IsCountedPerToken()
    {
        using var _ = no_grad();
        using var linear = nn.Linear(16, 32);
        using var counter = new FlopCounter(linear);
        linear.call(randn(2, 7, 16)).Dispose();
        Assert.Equal(2L * 14 * 16 * 32, counter.Total);
        counter.Reset();
        Assert.Equal(0, counter.Total);
    }

    [Fact]
    public void PointwiseConv_CountsAsAConvolution_PerToken()
    {
        using var _ = no_grad();
        using var pointwise = new PointwiseConv2d(6, 10);
        using var counter = new FlopCounter(pointwise);
        pointwise.call(randn(2, 15, 6)).Dispose();
        Assert.Equal(FlopFormulas.Conv2d(2, 6, 10, 1, 1, 1, 3, 5), counter.ByCategory[FlopCategory.Convolution]);
        Assert.Equal(0, counter.ByCategory[FlopCategory.Linear]);
    }

    [Fact]
    public void CrossAttention_CountsItsFourProjectionsAndTheTwoAttentionMatmuls()
    {
        using var _ = no_grad();
        var attention = new Attention(queryDim: 8, crossAttentionDim: 6, heads: 2, headDim: 4, bias: false);
        using var counter = new FlopCounter(attention);
        attention.forward(randn(1, 10, 8), randn(1, 3, 6)).Dispose();
        long projections = FlopFormulas.Linear(10, 8, 8) + 2 * FlopFormulas.Linear(3, 6, 8) + FlopFormulas.Linear(10, 8, 8);
        Assert.Equal(projections, counter.ByCategory[FlopCategory.Linear]);
        Assert.Equal(4L * 1 * 10 * 3 * 8, counter.ByCategory[FlopCategory.AttentionMatmul]);
    }

    [Fact]
    public void ClipSelfAttention_CountsTheSquareAttentionMatmuls()
    {
        using var _ = no_grad();
        var config = new ClipTextConfig
        {
            VocabSize = 50, HiddenSize = 16, IntermediateSize = 64, ProjectionDim = 16, NumHiddenLayers = 1, NumAttentionHeads = 4,
            MaxPositionEmbeddings = 12, HiddenAct = "quick_gelu", LayerNormEps = 1e-5, PadTokenId = 0, BosTokenId = 1, EosTokenId = 2,
        };
        var text = new ClipTextModel(config);
        using var counter = new FlopCounter(text);
        text.forward(zeros([3, 12], ScalarType.Int64)).Dispose();
        long tokens = 3 * 12;
        long linears = 4 * FlopFormulas.Linear(tokens, 16, 16) + FlopFormulas.Linear(tokens, 16, 64) + FlopFormulas.Linear(tokens, 64, 16);
        Assert.Equal(linears, counter.ByCategory[FlopCategory.Linear]);
        Assert.Equal(4L * 3 * 12 * 12 * 16, counter.ByCategory[FlopCategory.AttentionMatmul]);
    }

    [Fact]
    public void UNetCount_SeesEveryLayerAndIsLinearInTheBatch()
    {
        using var sd = StableDiffusion.Load(SharedData.TinyA());
        using var _ = no_grad();
        long Count(int batch)
        {
            using var counter = new FlopCounter(sd.Unet);
            using var text = sd.EncodePrompts(Enumerable.Repeat("a photo of a cat", batch).ToList());
            sd.PredictNoise(randn(batch, 4, 8, 8), 500, text).Dispose();
            Assert.True(counter.ByCategory[FlopCategory.Convolution] > 0);
            Assert.True(counter.ByCategory[FlopCategory.Linear] > 0);
            Assert.True(counter.ByCategory[FlopCategory.AttentionMatmul] > 0);
            return counter.Total;
        }
        long one = Count(1);
        Assert.Equal(2 * one, Count(2));
        // conv_in alone (4→32 channels at 8×8 in sd-tiny-a) must be part of the count.
        var convIn = sd.Unet.conv_in.weight!.shape;
        Assert.True(one > FlopFormulas.Conv2d(1, convIn[1], convIn[0], 1, convIn[2], convIn[3], 8, 8));
    }

    [Fact]
    public void Profiler_TimesEachLayer_AndNamesItsShape()
    {
        using var sd = StableDiffusion.Load(SharedData.TinyA());
        using var _ = no_grad();
        using var profiler = new LayerProfiler(sd.Unet, "unet", CPU);
        using var text = sd.EncodePrompts(["a photo of a cat", ""]);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        sd.PredictNoise(randn(2, 4, 8, 8), 500, text).Dispose();
        double total = clock.Elapsed.TotalSeconds;

        var convIn = Assert.Single(profiler.Layers, l => l.Name == "unet.conv_in");
        Assert.Equal(TimeCategory.Convolution, convIn.Category);
        Assert.Equal(1, convIn.Calls);
        Assert.StartsWith("conv 3×3 4→", convIn.Shape);
        Assert.EndsWith("@8×8 b2", convIn.Shape);
        Assert.Contains(profiler.Layers, l => l.Category == TimeCategory.Attention && l.Flops > 0);
        Assert.Contains(profiler.Layers, l => l.Category == TimeCategory.Normalisation);
        var categories = profiler.ByCategory(total);
        Assert.Equal(total, categories.Values.Sum(), 6);
        Assert.All(categories.Values, s => Assert.True(s >= 0));
    }
}
