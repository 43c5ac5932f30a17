using System.Text.Json;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Models;

/// <summary>
/// shared/data/golden/diffusers-tiny/tiny_unet_vae_golden.json: tiny UNet and VAE built under manual_seed(0) with
/// PyTorch's default init. Matching per-parameter statistics proves the same construction order and initialisers;
/// matching outputs then checks the forward passes on weights nobody perturbed.
/// </summary>
[Collection(nameof(GlobalRngCollection))]
public class SeededInitTests
{
    public SeededInitTests() => TorchRuntime.EnsureLoaded();

    static JsonElement Golden => JsonDocument.Parse(File.ReadAllText(SharedData.Path("data", "golden", "diffusers-tiny", "tiny_unet_vae_golden.json"))).RootElement;
    static JsonElement Stats => JsonDocument.Parse(File.ReadAllText(SharedData.Path("data", "golden", "diffusers-tiny", "tiny_init_param_stats.json"))).RootElement;

    static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    static void AssertInitStats(nn.Module module, JsonElement expected, string what)
    {
        var state = module.state_dict();
        Assert.Equal(expected.EnumerateObject().Count(), state.Count);
        foreach (var entry in expected.EnumerateObject())
        {
            Assert.True(state.ContainsKey(entry.Name), $"{what}: no parameter {entry.Name}");
            var p = state[entry.Name];
            double sum = p.sum().to(ScalarType.Float64).item<double>();
            var first = p.flatten()[..3].to(ScalarType.Float64).data<double>().ToArray();
            double expectedSum = entry.Value.GetProperty("sum").GetDouble();
            var expectedFirst = Doubles(entry.Value.GetProperty("first"));
            Assert.True(Math.Abs(sum - expectedSum) < 1e-4 && first.Zip(expectedFirst).All(t => Math.Abs(t.First - t.Second) < 1e-6),
                $"{what}: first parameter initialised differently from diffusers: {entry.Name} sum {sum} (expected {expectedSum}), " +
                $"first [{string.Join(", ", first)}] (expected [{string.Join(", ", expectedFirst)}])");
        }
    }

    static void AssertSlice(Tensor output, JsonElement expected, string what)
    {
        Assert.Equal(expected.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray(), output.shape);
        var slice = output[0, -1, TensorIndex.Slice(-3), TensorIndex.Slice(-3)].flatten();
        TensorAssert.Close(tensor(Doubles(expected.GetProperty("slice_[0,-1,-3:,-3:]")), dtype: ScalarType.Float32), slice, 1e-4, 1e-4, what);
        Assert.Equal(expected.GetProperty("mean").GetDouble(), output.mean().item<float>(), 4);
    }

    [Fact]
    public void TinyUNetAndVae_SeededDefaultInit_MatchDiffusersParametersAndOutputs()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var golden = Golden;
        var unetConfig = UNet2DConditionConfig.FromJson(golden.GetProperty("unet_config").GetRawText(), "unet_config");
        var vaeConfig = AutoencoderKLConfig.FromJson(golden.GetProperty("vae_config").GetRawText(), "vae_config");

        manual_seed(0);
        using var unet = new UNet2DConditionModel(unetConfig);
        manual_seed(0);
        using var vae = new AutoencoderKL(vaeConfig);
        AssertInitStats(unet, Stats.GetProperty("unet"), "UNet");
        AssertInitStats(vae, Stats.GetProperty("vae"), "VAE");

        using var g = new Generator(0);
        var sample = randn([1, 4, 32, 32], generator: g);
        var text = randn([1, 77, 8], generator: g);
        var image = rand([1, 3, 64, 64], generator: g).Mul(2).Sub(1);
        Assert.Equal(Doubles(golden.GetProperty("inputs_first4").GetProperty("sample")), sample.flatten()[..4].to(ScalarType.Float64).data<double>().ToArray());

        AssertSlice(unet.forward(sample, tensor(new long[] { 10 }), text), golden.GetProperty("unet_eps"), "tiny UNet eps");
        using var posterior = vae.Encode(image);
        AssertSlice(posterior.Mean, golden.GetProperty("vae_posterior_mean"), "tiny VAE posterior mean");
        Assert.Equal(golden.GetProperty("vae_posterior_logvar_mean").GetDouble(), posterior.LogVar.mean().item<float>(), 4);
        AssertSlice(vae.Decode(posterior.Mean), golden.GetProperty("vae_decoded"), "tiny VAE decoded");
    }

    [Fact]
    public void FreshModels_HaveGroupNormWeightOneAndBiasZero()
    {
        using var scope = NewDisposeScope();
        var config = UNet2DConditionConfig.FromJson(Golden.GetProperty("unet_config").GetRawText(), "unet_config");
        using var unet = new UNet2DConditionModel(config);
        var norms = unet.named_modules().Where(m => m.module is TorchSharp.Modules.GroupNorm).Select(m => (TorchSharp.Modules.GroupNorm)m.module).ToList();
        Assert.NotEmpty(norms);
        Assert.All(norms, n => Assert.True(n.weight.Eq(1).all().item<bool>() && n.bias!.Eq(0).all().item<bool>()));
    }
}
