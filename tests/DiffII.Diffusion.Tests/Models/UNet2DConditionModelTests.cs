using DiffII.Diffusion.IO;
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

public class UNet2DConditionModelBehaviourTests
{
    public UNet2DConditionModelBehaviourTests() => TorchRuntime.EnsureLoaded();

    static UNet2DConditionModel TinyA()
    {
        var unet = UNet2DConditionModel.FromConfigFile(SharedData.TinyA("unet", "config.json"));
        unet.LoadWeights(SharedData.TinyA("unet", "diffusion_pytorch_model.safetensors"));
        unet.eval();
        return unet;
    }

    static (Tensor Sample, Tensor Text) Inputs() =>
        (ModelTestData.Golden("unet.sample"), ModelTestData.Golden("text.last_hidden_state")[..2]);

    [Fact]
    public void Timestep_ZeroDimOrBatchIntOrFloat_IsBroadcastToTheBatch()
    {
        using var unet = TinyA();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (sample, text) = Inputs();
        var zeroDim = unet.forward(sample, tensor(500L), text);
        var perSample = unet.forward(sample, tensor(new long[] { 500, 500 }), text);
        var asFloat = unet.forward(sample, tensor(500.0f), text);
        var single = unet.forward(sample, tensor(new long[] { 500 }), text);
        TensorAssert.Close(perSample, zeroDim, 0, 0, "0-d vs [B] timestep");
        TensorAssert.Close(perSample, asFloat, 0, 0, "int64 vs float timestep");
        TensorAssert.Close(perSample, single, 0, 0, "[1] vs [B] timestep");
        var different = unet.forward(sample, tensor(new long[] { 500, 20 }), text);
        TensorAssert.Close(perSample[0], different[0], 0, 0, "sample 0 uses its own timestep");
        Assert.False(perSample[1].allclose(different[1], 1e-3, 1e-3), "sample 1 must see timestep 20");
        Assert.Throws<ArgumentException>(() => unet.forward(sample, tensor(new long[] { 1, 2, 3 }), text));
    }

    [Fact]
    public void Forward_OddLatentSize_UpsamplesToTheSkipSizes()
    {
        using var unet = TinyA();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (_, text) = Inputs();
        using var generator1 = new Generator(3);
        var output = unet.forward(randn(2, 4, 9, 7, generator: generator1), tensor(10L), text);
        Assert.Equal(new long[] { 2, 4, 9, 7 }, output.shape);
        Assert.False(output.isnan().any().item<bool>());
    }

    [Fact]
    public void Forward_InBFloat16_RunsAndStaysCloseToFloat32()
    {
        using var unet = TinyA();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (sample, text) = Inputs();
        var timesteps = ModelTestData.Golden("unet.timesteps");
        var reference = unet.forward(sample, timesteps, text);
        unet.to(CPU, ScalarType.BFloat16);
        Assert.All(unet.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        var output = unet.forward(sample.to(ScalarType.BFloat16), timesteps, text.to(ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        double error = (output.to(ScalarType.Float32) - reference).abs().max().item<float>();
        double scale = reference.abs().max().item<float>();
        Console.WriteLine($"bf16 vs fp32 UNet: max abs error {error:G3} (output max {scale:G3})");
        Assert.True(error < 0.05 * scale, $"bf16 output differs from fp32 by {error} (output max {scale})");
    }

    [Fact]
    public void Forward_InADisposeScope_LeavesNoLiveTensors()
    {
        using var unet = TinyA();
        var (sample, text) = Inputs();
        using var timestep = tensor(321L);
        using var _ = no_grad();
        using (NewDisposeScope()) unet.forward(sample, timestep, text);   // warm-up (lazy initialisations)
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (NewDisposeScope()) unet.forward(sample, timestep, text);
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.Equal(before, after);
        sample.Dispose();
        text.Dispose();
    }

    /// <summary>A LoRA pair as diffusers' LoRALinearLayer computes it: up(down(x)).</summary>
    sealed class LoraPair(Tensor down, Tensor up) : IProjectionAdapter
    {
        public Tensor Delta(Tensor input) => nn.functional.linear(nn.functional.linear(input, down), up);
    }

    [Theory]
    [InlineData(1.0, "lora.unet.out")]
    [InlineData(0.5, "lora.unet.out_scale0.5")]
    public void Adapters_AddScaledDeltasToEveryProjection_MatchingDiffusersLora(double scale, string golden)
    {
        using var unet = TinyA();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var keysBefore = unet.state_dict().Keys.ToList();
        var lora = SafeTensorsFile.LoadAll(SharedData.TinyA("lora", "pytorch_lora_weights.safetensors"));
        int attached = 0;
        foreach (var (name, attention) in unet.Attentions())
        {
            IProjectionAdapter Pair(string projection) =>
                new LoraPair(lora[$"{name}.processor.{projection}_lora.down.weight"], lora[$"{name}.processor.{projection}_lora.up.weight"]);
            Assert.Equal(lora[$"{name}.processor.to_k_lora.down.weight"].shape[1], attention.KeyValueInputDim);
            Assert.Equal(lora[$"{name}.processor.to_q_lora.up.weight"].shape[0], attention.InnerDim);
            Assert.Equal(name.EndsWith("attn2"), attention.IsCrossAttention);
            attention.Adapters = new AttentionAdapters { Q = Pair("to_q"), K = Pair("to_k"), V = Pair("to_v"), Out = Pair("to_out"), Scale = scale };
            attached++;
        }
        Assert.Equal(12, attached);
        Assert.Equal(keysBefore, unet.state_dict().Keys.ToList());

        var (sample, text) = Inputs();
        var output = unet.forward(sample, ModelTestData.Golden("unet.timesteps"), text);
        var expected = ModelTestData.Golden(golden);
        Console.WriteLine($"{golden} max abs error: {(output - expected).abs().max().item<float>():G3}");
        TensorAssert.Close(expected, output, 1e-4, 1e-4, golden);

        foreach (var (_, attention) in unet.Attentions()) attention.Adapters = null;
        TensorAssert.Close(ModelTestData.Golden("unet.out"), unet.forward(sample, ModelTestData.Golden("unet.timesteps"), text), 1e-4, 1e-4, "adapters removed");
    }

    [Fact]
    public void Config_AttentionHeadDimIsTheNumberOfHeads_ListReversedForUpBlocks()
    {
        var sd21 = UNet2DConditionConfig.FromFile(ModelTestData.SdConfig("sd21", "unet", "config.json"));
        Assert.Equal([5, 10, 20, 20], sd21.HeadsPerBlock());
        Assert.True(sd21.UseLinearProjection && sd21.UpcastAttention);
        using var unet = new UNet2DConditionModel(sd21, device: META);
        var attentions = unet.Attentions().ToDictionary(a => a.Name, a => a.Attention);
        var first = attentions["down_blocks.0.attentions.0.transformer_blocks.0.attn1"];
        Assert.Equal((5, 64, 320, false, true), (first.Heads, first.HeadDim, first.QueryDim, first.IsCrossAttention, first.UpcastAttention));
        var cross = attentions["up_blocks.1.attentions.0.transformer_blocks.0.attn2"];
        Assert.Equal((20, 64, 1280, 1024, true), (cross.Heads, cross.HeadDim, cross.QueryDim, cross.KeyValueInputDim, cross.IsCrossAttention));
        Assert.Equal(20, attentions["mid_block.attentions.0.transformer_blocks.0.attn1"].Heads);
        Assert.Equal(5, attentions["up_blocks.3.attentions.2.transformer_blocks.0.attn2"].Heads);

        var sd15 = UNet2DConditionConfig.FromFile(ModelTestData.SdConfig("sd15", "unet", "config.json"));
        using var unet15 = new UNet2DConditionModel(sd15, device: META);
        var mid = unet15.Attentions().Single(a => a.Name == "mid_block.attentions.0.transformer_blocks.0.attn2").Attention;
        Assert.Equal((8, 160, 768), (mid.Heads, mid.HeadDim, mid.KeyValueInputDim));
        // Absent keys take diffusers' defaults.
        Assert.Equal("UNetMidBlock2DCrossAttn", sd15.MidBlockType);
        Assert.Equal(1, sd15.TransformerLayersPerBlockList()[3]);
        Assert.False(sd15.UpcastAttention || sd15.UseLinearProjection);
    }

    [Theory]
    [InlineData("class_embed_type", "\"timestep\"")]
    [InlineData("addition_embed_type", "\"text_time\"")]
    [InlineData("mid_block_type", "\"UNetMidBlock2DSimpleCrossAttn\"")]
    [InlineData("time_embedding_type", "\"fourier\"")]
    [InlineData("act_fn", "\"gelu\"")]
    [InlineData("only_cross_attention", "true")]
    public void Config_UnsupportedValue_IsNotSupportedNamingKeyAndValue(string key, string json)
    {
        var config = UNet2DConditionConfig.FromJson($$"""{"block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "norm_num_groups": 8, "{{key}}": {{json}}}""");
        var e = Assert.Throws<NotSupportedException>(() => new UNet2DConditionModel(config, device: META));
        Assert.Contains(key, e.Message);
        Assert.Contains(json.Trim('"'), e.Message);
    }

    [Fact]
    public void Config_UnsupportedBlockType_NamesKeyAndValue()
    {
        var config = UNet2DConditionConfig.FromJson("""{"down_block_types": ["CrossAttnDownBlock2D", "AttnDownBlock2D"], "block_out_channels": [32, 64], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]}""");
        var e = Assert.Throws<NotSupportedException>(() => new UNet2DConditionModel(config, device: META));
        Assert.Contains("down_block_types", e.Message);
        Assert.Contains("AttnDownBlock2D", e.Message);
    }

    [Fact]
    public void Config_BadFileOrValue_ErrorNamesFileAndKey()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"diffii-unet-config-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "config.json");
            File.WriteAllText(path, """{"in_channels": 4, "layers_per_block": "two"}""");
            var e = Assert.Throws<InvalidDataException>(() => UNet2DConditionConfig.FromFile(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("layers_per_block", e.Message);
            Assert.Throws<FileNotFoundException>(() => UNet2DConditionConfig.FromFile(Path.Combine(dir, "missing.json")));

            var wrongLength = UNet2DConditionConfig.FromJson("""{"attention_head_dim": [8, 8]}""");
            var e2 = Assert.Throws<ArgumentException>(() => new UNet2DConditionModel(wrongLength, device: META));
            Assert.Contains("attention_head_dim", e2.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
