using DiffII.Diffusion.Models;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Models;

/// <summary>These tests seed and draw from the global CPU generator (module init included), so nothing may run beside them.</summary>
[CollectionDefinition(nameof(GlobalRngCollection), DisableParallelization = true)]
public sealed class GlobalRngCollection;

/// <summary>
/// The seeded layer tests of diffusers' tests/models/test_layers_utils.py (values in shared/data/golden/diffusers-tiny):
/// manual_seed(0), inputs from randn, then the module's default init from the same generator; compare out[0, -1, -3:, -3:].
/// They pass only if construction order and default initialisation match PyTorch exactly.
/// </summary>
[Collection(nameof(GlobalRngCollection))]
public class DiffusersLayerTests
{
    public DiffusersLayerTests() => TorchRuntime.EnsureLoaded();

    static void AssertCornerSlice(Tensor output, double[] expected, string what)
    {
        using var slice = output[0, -1, TensorIndex.Slice(-3), TensorIndex.Slice(-3)].flatten();
        TensorAssert.Close(tensor(expected, dtype: ScalarType.Float32), slice, 1e-3, 0, what);
    }

    [Fact]
    public void Upsample2D_WithConv()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(0);
        var sample = randn(1, 32, 32, 32);
        var up = new Upsample2D(32, 32);
        var output = up.forward(sample);
        Assert.Equal(new long[] { 1, 32, 64, 64 }, output.shape);
        AssertCornerSlice(output, [0.7145, 1.3773, 0.3492, 0.8448, 1.0839, -0.3341, 0.5956, 0.1250, -0.4841], "Upsample2D with conv");
    }

    [Fact]
    public void Upsample2D_WithConv_Out64()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(0);
        var sample = randn(1, 32, 32, 32);
        var output = new Upsample2D(32, 64).forward(sample);
        AssertCornerSlice(output, [0.2703, 0.1656, -0.2538, -0.0553, -0.2984, 0.1044, 0.1155, 0.2579, 0.7755], "Upsample2D out 64");
    }

    [Fact]
    public void Downsample2D_WithConv()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(0);
        var sample = randn(1, 32, 64, 64);
        var output = new Downsample2D(32, 32, padding: 1).forward(sample);
        Assert.Equal(new long[] { 1, 32, 32, 32 }, output.shape);
        AssertCornerSlice(output, [0.9267, 0.5878, 0.3337, 1.2321, -0.1191, -0.3984, -0.7532, -0.0715, -0.3913], "Downsample2D with conv");
    }

    [Fact]
    public void Downsample2D_WithConv_Out16()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(0);
        var sample = randn(1, 32, 64, 64);
        var output = new Downsample2D(32, 16, padding: 1).forward(sample);
        AssertCornerSlice(output, [-0.6586, 0.5985, 0.0721, 0.1256, -0.1492, 0.4436, -0.2544, 0.5021, 1.1522], "Downsample2D out 16");
    }

    [Fact]
    public void ResnetBlock2D_Default()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(0);
        var sample = randn(1, 32, 64, 64);
        var temb = randn(1, 128);
        var block = new ResnetBlock2D(32, 32, 128, groups: 32, eps: 1e-6);
        var output = block.forward(sample, temb);
        AssertCornerSlice(output, [-1.9010, -0.2974, -0.8245, -1.3533, 0.8742, -0.9645, -2.0584, 1.3387, -0.4746], "ResnetBlock2D default");
    }

    [Fact]
    public void Transformer2DModel_CrossAttention()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(0);
        var sample = randn(1, 64, 64, 64);
        var transformer = new Transformer2DModel(heads: 2, headDim: 32, inChannels: 64, numLayers: 1, crossAttentionDim: 64, normNumGroups: 32,
                                                 useLinearProjection: false, upcastAttention: false);
        var context = randn(1, 4, 64);
        var output = transformer.forward(sample, context);
        Assert.Equal(new long[] { 1, 64, 64, 64 }, output.shape);
        AssertCornerSlice(output, [0.0143, -0.6909, -2.1547, -1.8893, 1.4097, 0.1359, -0.2521, -1.3359, 0.2598], "Transformer2DModel cross-attn");
    }

    [Theory]
    [InlineData(1.0, false, new[] { 0.9646, 0.9804, 0.9892, 0.9615, 0.9787, 0.9882, 0.9582, 0.9769, 0.9872 })]
    [InlineData(0.0, true, new[] { 0.3019, 0.228, 0.1716, 0.3146, 0.2377, 0.179, 0.3272, 0.2474, 0.1864 })]
    public void Timesteps_MatchDiffusersEmbedding(double shift, bool flip, double[] expected)
    {
        using var scope = NewDisposeScope();
        var embedding = new Timesteps(64, flip, shift).forward(KeptScalars.Arange(128));
        Assert.Equal(new long[] { 128, 64 }, embedding.shape);
        var slice = embedding[TensorIndex.Slice(23, 26), TensorIndex.Slice(47, 50)].flatten();
        TensorAssert.Close(tensor(expected, dtype: ScalarType.Float32), slice, 1e-3, 0, "timestep embedding");
    }
}
