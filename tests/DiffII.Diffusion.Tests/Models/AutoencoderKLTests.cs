using DiffII.Diffusion.IO;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Models;

public class AutoencoderKLTests
{
    public AutoencoderKLTests() => TorchRuntime.EnsureLoaded();

    static AutoencoderKL TinyA()
    {
        var vae = AutoencoderKL.FromConfigFile(SharedData.TinyA("vae", "config.json"));
        Assert.Equal(vae.state_dict().Count, vae.LoadWeights(SharedData.TinyA("vae", "diffusion_pytorch_model.safetensors")));
        vae.eval();
        return vae;
    }

    [Theory]
    [InlineData("sd15", "sd15_diffusers_vae.txt")]
    [InlineData("sd21", "sd21_diffusers_vae.txt")]
    public void StateDictKeysAndShapes_EqualDiffusers(string model, string keyList)
    {
        using var vae = AutoencoderKL.FromConfigFile(ModelTestData.SdConfig(model, "vae", "config.json"), device: META);
        ModelTestData.AssertSameKeys(ModelTestData.ReadKeyList(ModelTestData.Keys(keyList)), ModelTestData.Shapes(vae), $"{model} VAE");
        Assert.Equal(0.18215, vae.ScalingFactor);
        Assert.Equal(8, vae.DownscaleFactor);
    }

    [Theory]
    [InlineData("sd15_diffusers_vae_pre017_attn_names.txt", "sd15_diffusers_vae.txt")]
    [InlineData("sd21_diffusers_vae_pre017_attn_names.txt", "sd21_diffusers_vae.txt")]
    public void UpgradeLegacyKeys_MapsPre017AttentionNamesOntoCurrentKeys(string legacyList, string currentList)
    {
        var legacy = ModelTestData.ReadKeyList(ModelTestData.Keys(legacyList));
        Assert.Contains("encoder.mid_block.attentions.0.query.weight", legacy.Keys);
        var upgraded = legacy.ToDictionary(kv => AutoencoderKL.UpgradeLegacyKey(kv.Key), kv => kv.Value);
        ModelTestData.AssertSameKeys(ModelTestData.ReadKeyList(ModelTestData.Keys(currentList)), upgraded, "upgraded legacy VAE keys");
        Assert.Equal("decoder.mid_block.attentions.0.to_out.0.bias", AutoencoderKL.UpgradeLegacyKey("decoder.mid_block.attentions.0.proj_attn.bias"));
        Assert.Equal("decoder.mid_block.resnets.0.conv1.weight", AutoencoderKL.UpgradeLegacyKey("decoder.mid_block.resnets.0.conv1.weight"));
    }

    [Fact]
    public void LoadWeights_AcceptsLegacyAttentionNames_WithSameResult()
    {
        using var scope = NewDisposeScope();
        var path = SharedData.TinyA("vae", "diffusion_pytorch_model.safetensors");
        var renamed = SafeTensorsFile.LoadAll(path).ToDictionary(kv => kv.Key
            .Replace(".to_q.", ".query.").Replace(".to_k.", ".key.").Replace(".to_v.", ".value.").Replace(".to_out.0.", ".proj_attn."), kv => kv.Value);
        Assert.Contains("encoder.mid_block.attentions.0.proj_attn.weight", renamed.Keys);
        using var fromLegacy = AutoencoderKL.FromConfigFile(SharedData.TinyA("vae", "config.json"));
        fromLegacy.LoadWeights(new DictionarySource("legacy", renamed));
        using var reference = TinyA();
        var expected = reference.state_dict();
        foreach (var (key, value) in fromLegacy.state_dict())
            Assert.True(value.eq(expected[key]).all().item<bool>(), $"{key} differs after a legacy-name load");
    }

    [Fact]
    public void LoadWeights_BothOldAndNewNames_IsAnErrorNamingBoth()
    {
        using var scope = NewDisposeScope();
        var weights = new Dictionary<string, Tensor>
        {
            ["encoder.mid_block.attentions.0.query.weight"] = zeros(2, 2),
            ["encoder.mid_block.attentions.0.to_q.weight"] = zeros(2, 2),
        };
        var e = Assert.Throws<CheckpointMismatchException>(() => AutoencoderKL.UpgradeLegacyKeys(new DictionarySource("mixed.safetensors", weights)));
        Assert.Contains("mixed.safetensors", e.Message);
        Assert.Contains("query.weight", e.Message);
    }

    [Fact]
    public void EncodeAndDecode_MatchDiffusersGolden()
    {
        using var vae = TinyA();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var distribution = vae.Encode(ModelTestData.Golden("vae.image"));
        var mean = ModelTestData.Golden("vae.encoder.mean");
        var std = ModelTestData.Golden("vae.encoder.std");
        var decoded = vae.Decode(ModelTestData.Golden("vae.latent"));
        var expectedDecoded = ModelTestData.Golden("vae.decoder.out");
        Console.WriteLine($"vae max abs errors: mean {(distribution.Mean - mean).abs().max().item<float>():G3}, " +
                          $"std {(distribution.Std - std).abs().max().item<float>():G3}, decoder {(decoded - expectedDecoded).abs().max().item<float>():G3}");
        TensorAssert.Close(mean, distribution.Mean, 1e-4, 1e-4, "vae.encoder.mean");
        TensorAssert.Close(std, distribution.Std, 1e-4, 1e-4, "vae.encoder.std");
        TensorAssert.Close(expectedDecoded, decoded, 1e-4, 1e-4, "vae.decoder.out");
        TensorAssert.Close(distribution.LogVar.Mul(0.5).exp(), distribution.Std, 0, 1e-6, "std = exp(0.5 logvar)");
    }

    [Fact]
    public void Sample_IsMeanPlusStdTimesSeededNoise()
    {
        using var vae = TinyA();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var distribution = vae.Encode(ModelTestData.Golden("vae.image"));
        using var generator1 = new Generator(42);
        var first = distribution.Sample(generator1);
        using var generator2 = new Generator(42);
        var again = distribution.Sample(generator2);
        using var generator3 = new Generator(42);
        var noise = randn(distribution.Mean.shape, generator: generator3);
        Assert.True(first.eq(again).all().item<bool>(), "the same seed must give the same sample");
        TensorAssert.Close(distribution.Mean.Add(distribution.Std * noise), first, 1e-6, 1e-6, "sample");
    }

    [Fact]
    public void EncodeDecode_InBFloat16_RunAndStayCloseToFloat32()
    {
        using var vae = TinyA();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var image = ModelTestData.Golden("vae.image");
        var latent = ModelTestData.Golden("vae.latent");
        using var reference = vae.Encode(image);
        var referenceDecoded = vae.Decode(latent);
        vae.to(CPU, ScalarType.BFloat16);
        using var posterior = vae.Encode(image.to(ScalarType.BFloat16));
        var decoded = vae.Decode(latent.to(ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, posterior.Mean.dtype);
        Assert.Equal(ScalarType.BFloat16, decoded.dtype);
        double meanError = (posterior.Mean.to(ScalarType.Float32) - reference.Mean).abs().max().item<float>();
        double decodedError = (decoded.to(ScalarType.Float32) - referenceDecoded).abs().max().item<float>();
        Console.WriteLine($"bf16 vs fp32 VAE: mean {meanError:G3}, decoded {decodedError:G3}");
        Assert.True(meanError < 0.05 * reference.Mean.abs().max().item<float>(), $"bf16 posterior mean off by {meanError}");
        Assert.True(decodedError < 0.05 * referenceDecoded.abs().max().item<float>(), $"bf16 decoded image off by {decodedError}");
    }

    [Fact]
    public void EncodeDecode_InADisposeScope_LeaveNoLiveTensors()
    {
        using var vae = TinyA();
        using var image = ModelTestData.Golden("vae.image");
        using var _ = no_grad();
        using (NewDisposeScope()) { using var d = vae.Encode(image); vae.Decode(d.Sample(new Generator(1))); }
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using var generator4 = new Generator(1);
        using (NewDisposeScope()) { var d = vae.Encode(image); vae.Decode(d.Sample(generator4)); }
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void Config_UnsupportedBlockType_NamesKeyAndValue()
    {
        var config = AutoencoderKLConfig.FromJson("""{"down_block_types": ["AttnDownEncoderBlock2D"], "up_block_types": ["UpDecoderBlock2D"]}""");
        var e = Assert.Throws<NotSupportedException>(() => new AutoencoderKL(config, device: META));
        Assert.Contains("down_block_types", e.Message);
        Assert.Contains("AttnDownEncoderBlock2D", e.Message);
    }

    [Fact]
    public void Config_AbsentKeysTakeDiffusersDefaults_AndNewerKeysAreRead()
    {
        var config = AutoencoderKLConfig.FromFile(ModelTestData.SdConfig("sd15", "vae", "config.json"));
        Assert.Equal(0.18215, config.ScalingFactor);
        Assert.True(config.ForceUpcast && config.UseQuantConv && config.UsePostQuantConv && config.MidBlockAddAttention);
        Assert.Equal([128, 256, 512, 512], config.BlockOutChannels);
        Assert.Equal(512, config.SampleSize!.Values[0]);

        var bare = AutoencoderKLConfig.FromJson("""{"use_quant_conv": false, "use_post_quant_conv": false, "mid_block_add_attention": false, "norm_num_groups": 8, "block_out_channels": [8]}""");
        using var vae = new AutoencoderKL(bare, device: META);
        var keys = vae.state_dict().Keys.ToList();
        Assert.DoesNotContain(keys, k => k.StartsWith("quant_conv") || k.StartsWith("post_quant_conv") || k.Contains("attentions"));
        Assert.Contains("encoder.mid_block.resnets.1.conv2.weight", keys);
    }
}
