using DiffII.Diffusion.Models;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Models;

public class UNet2DConditionModelTests
{
    public UNet2DConditionModelTests() => TorchRuntime.EnsureLoaded();

    static UNet2DConditionModel TinyA()
    {
        var unet = UNet2DConditionModel.FromConfigFile(SharedData.TinyA("unet", "config.json"));
        Assert.Equal(unet.state_dict().Count, unet.LoadWeights(SharedData.TinyA("unet", "diffusion_pytorch_model.safetensors")));
        unet.eval();
        return unet;
    }

    [Theory]
    [InlineData("sd15", "sd15_diffusers_unet.txt")]
    [InlineData("sd21", "sd21_diffusers_unet.txt")]
    public void StateDictKeysAndShapes_EqualDiffusers(string model, string keyList)
    {
        var config = UNet2DConditionConfig.FromFile(ModelTestData.SdConfig(model, "unet", "config.json"));
        using var unet = new UNet2DConditionModel(config, device: META);
        ModelTestData.AssertSameKeys(ModelTestData.ReadKeyList(ModelTestData.Keys(keyList)), ModelTestData.Shapes(unet), $"{model} UNet");
        Assert.True(unet.parameters().All(p => p.device_type == DeviceType.META));
    }

    [Fact]
    public void Forward_MatchesDiffusersGolden()
    {
        using var unet = TinyA();
        using var scope = NewDisposeScope();
        var sample = ModelTestData.Golden("unet.sample");
        var timesteps = ModelTestData.Golden("unet.timesteps");
        var text = ModelTestData.Golden("text.last_hidden_state")[..2];
        using var _ = no_grad();
        var output = unet.forward(sample, timesteps, text);
        var expected = ModelTestData.Golden("unet.out");
        Console.WriteLine($"unet.out max abs error: {(output - expected).abs().max().item<float>():G3}");
        TensorAssert.Close(expected, output, 1e-4, 1e-4, "unet.out");
    }
}
