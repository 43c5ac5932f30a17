using DiffII.Diffusion.IO;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.IO;

public sealed class DiffusersFolderTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-folder-").FullName;

    public void Dispose() => Directory.Delete(_root, true);

    /// <summary>A copy of sd-tiny-a's configs, tokenizer and model_index.json, with small stand-in weights written here.</summary>
    string MakeFolder(string name = "model", bool weights = true)
    {
        string dir = Path.Combine(_root, name);
        foreach (string file in Directory.GetFiles(SharedData.TinyA(), "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(SharedData.TinyA(), file);
            if (relative.EndsWith(".safetensors", StringComparison.Ordinal) || relative.StartsWith("golden", StringComparison.Ordinal) ||
                relative.StartsWith("lora", StringComparison.Ordinal) || relative == "README.md") continue;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(dir, relative))!);
            File.Copy(file, Path.Combine(dir, relative));
        }
        if (weights)
        {
            Weights(dir, "unet/diffusion_pytorch_model.safetensors");
            Weights(dir, "vae/diffusion_pytorch_model.safetensors");
            Weights(dir, "text_encoder/model.safetensors");
        }
        return dir;
    }

    static void Weights(string dir, string relative, params string[] keys)
    {
        if (keys.Length == 0) keys = ["conv.weight", "conv.bias"];
        SafeTensorsFile.Save(Path.Combine(dir, relative), keys.Select(k => new KeyValuePair<string, Tensor>(k, ones(2, 3))));
    }

    [Fact]
    public void TinyA_IsDescribedWithEveryComponentsConfigAndWeights()
    {
        var d = DiffusersFolder.Describe(SharedData.TinyA());
        Assert.Equal(CheckpointLayout.DiffusersFolder, d.Layout);
        Assert.Equal("StableDiffusionPipeline", d.PipelineClassName);
        Assert.Null(d.Version); // cross_attention_dim 32: neither SD 1 nor SD 2
        Assert.Equal(new PipelineComponent("diffusers", "UNet2DConditionModel"), d.Components["unet"]);
        Assert.Equal(new PipelineComponent(null, null), d.Components["safety_checker"]);
        Assert.Equal(SharedData.TinyA("unet", "config.json"), d.Unet!.ConfigPath);
        Assert.Equal([SharedData.TinyA("unet", "diffusion_pytorch_model.safetensors")], d.Unet.WeightFiles);
        Assert.Null(d.Unet.WeightIndexPath);
        Assert.Null(d.Unet.Variant);
        Assert.Equal("AutoencoderKL", d.Vae!.ClassName);
        Assert.Equal([SharedData.TinyA("text_encoder", "model.safetensors")], d.TextEncoder!.WeightFiles);
        Assert.Equal("transformers", d.TextEncoder.Library);
        Assert.Equal(SharedData.TinyA("tokenizer", "vocab.json"), d.Tokenizer!.VocabPath);
        Assert.Equal(SharedData.TinyA("tokenizer", "merges.txt"), d.Tokenizer.MergesPath);
        Assert.NotNull(d.Tokenizer.SpecialTokensMapPath);
        Assert.Equal("DDIMScheduler", d.Scheduler!.ClassName);
        Assert.Equal(SharedData.TinyA("scheduler", "scheduler_config.json"), d.Scheduler.ConfigPath);

        using var weights = d.Vae.OpenWeights();
        Assert.Equal(d.Vae.WeightFiles[0], weights.Name);
        Assert.Contains("decoder.mid_block.attentions.0.to_q.weight", weights.Keys);
    }

    [Theory]
    [InlineData(768, StableDiffusionVersion.V1)]
    [InlineData(1024, StableDiffusionVersion.V2)]
    public void Version_ComesFromTheUnetCrossAttentionWidth(int width, StableDiffusionVersion version)
    {
        string dir = MakeFolder();
        string config = Path.Combine(dir, "unet", "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"cross_attention_dim\": 32", $"\"cross_attention_dim\": {width}"));
        Assert.Equal(version, DiffusersFolder.Describe(dir).Version);
    }

    [Fact]
    public void MissingUnetFolder_IsNamedWithWhatBelongsThere()
    {
        string dir = MakeFolder();
        Directory.Delete(Path.Combine(dir, "unet"), true);
        var e = Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir));
        Assert.Contains(Path.Combine(dir, "unet"), e.Message);
        Assert.Contains("folder missing", e.Message);
        Assert.Contains("UNet2DConditionModel", e.Message);
    }

    [Fact]
    public void MissingFiles_AreNamed()
    {
        string dir = MakeFolder();
        File.Delete(Path.Combine(dir, "vae", "config.json"));
        Assert.Contains(Path.Combine(dir, "vae", "config.json"), Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir)).Message);

        dir = MakeFolder("no-merges");
        File.Delete(Path.Combine(dir, "tokenizer", "merges.txt"));
        Assert.Contains("merges", Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir)).Message);

        dir = MakeFolder("no-text-weights");
        File.Delete(Path.Combine(dir, "text_encoder", "model.safetensors"));
        var e = Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir));
        Assert.Contains(Path.Combine(dir, "text_encoder"), e.Message);
        Assert.Contains("model.safetensors", e.Message);

        dir = MakeFolder("no-index");
        File.Delete(Path.Combine(dir, "model_index.json"));
        Assert.Contains("model_index.json is missing", Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir)).Message);

        Assert.Contains("no such file or folder", Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(Path.Combine(_root, "nowhere"))).Message);
    }

    [Fact]
    public void PickleOnlyWeights_AskForSafetensors()
    {
        string dir = MakeFolder();
        File.Delete(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors"));
        File.WriteAllBytes(Path.Combine(dir, "unet", "diffusion_pytorch_model.bin"), [0x80, 0x02]);
        var e = Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir));
        Assert.Contains(Path.Combine(dir, "unet"), e.Message);
        Assert.Contains("diffusion_pytorch_model.bin", e.Message);
        Assert.Contains("convert them to safetensors", e.Message);
    }

    [Theory]
    [InlineData("{ not json", "not valid JSON")]
    [InlineData("[1, 2]", "expected a JSON object")]
    [InlineData("{\"unet\": [\"diffusers\"], \"vae\": [\"diffusers\", \"AutoencoderKL\"]}", "component \"unet\" must be [library, class name]")]
    [InlineData("{\"_class_name\": \"StableDiffusionPipeline\", \"vae\": [\"diffusers\", \"AutoencoderKL\"]}", "lists no \"unet\" component")]
    public void MalformedModelIndex_IsRefusedNamingTheFile(string json, string expected)
    {
        string dir = MakeFolder();
        File.WriteAllText(Path.Combine(dir, "model_index.json"), json);
        var e = Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir));
        Assert.Contains(Path.Combine(dir, "model_index.json"), e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Fp16Variant_IsPreferredWhenAsked_AndEachComponentFallsBackToDefaultWeights()
    {
        string dir = MakeFolder();
        Weights(dir, "unet/diffusion_pytorch_model.fp16.safetensors");
        Weights(dir, "text_encoder/model.fp16.safetensors");

        var fp16 = DiffusersFolder.Describe(dir, new DiffusersFolderOptions { Variant = "fp16" });
        Assert.Equal([Path.Combine(dir, "unet", "diffusion_pytorch_model.fp16.safetensors")], fp16.Unet!.WeightFiles);
        Assert.Equal("fp16", fp16.Unet.Variant);
        Assert.Equal("fp16", fp16.TextEncoder!.Variant);
        Assert.Equal([Path.Combine(dir, "vae", "diffusion_pytorch_model.safetensors")], fp16.Vae!.WeightFiles); // no fp16 VAE: default weights
        Assert.Null(fp16.Vae.Variant);

        var plain = DiffusersFolder.Describe(dir);
        Assert.Equal([Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors")], plain.Unet!.WeightFiles);
        Assert.Null(plain.Unet.Variant);

        // Only variant weights and no variant chosen: an error that names the variant.
        File.Delete(Path.Combine(dir, "unet", "diffusion_pytorch_model.safetensors"));
        var e = Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir));
        Assert.Contains("\"fp16\"", e.Message);
        Assert.Contains("Variant", e.Message);
    }

    [Fact]
    public void ShardedWeights_AreOneSourceAcrossTheShards()
    {
        string dir = MakeFolder();
        string unetDir = Path.Combine(dir, "unet");
        File.Delete(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors"));
        var first = new Dictionary<string, Tensor> { ["conv_in.weight"] = randn(4, 4, 3, 3), ["conv_in.bias"] = randn(4) };
        var second = new Dictionary<string, Tensor> { ["conv_out.weight"] = randn(4, 4, 3, 3).to(ScalarType.Float16), ["conv_out.bias"] = randn(4) };
        SafeTensorsFile.Save(Path.Combine(unetDir, "diffusion_pytorch_model-00001-of-00002.safetensors"), first);
        SafeTensorsFile.Save(Path.Combine(unetDir, "diffusion_pytorch_model-00002-of-00002.safetensors"), second);
        string index = Path.Combine(unetDir, "diffusion_pytorch_model.safetensors.index.json");
        void WriteIndex(IEnumerable<(string Key, string Shard)> map) => File.WriteAllText(index,
            "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {" + string.Join(", ", map.Select(m => $"\"{m.Key}\": \"{m.Shard}\"")) + "}}");
        var map = first.Keys.Select(k => (k, "diffusion_pytorch_model-00001-of-00002.safetensors"))
            .Concat(second.Keys.Select(k => (k, "diffusion_pytorch_model-00002-of-00002.safetensors"))).ToList();
        WriteIndex(map);

        var d = DiffusersFolder.Describe(dir);
        Assert.Equal(index, d.Unet!.WeightIndexPath);
        Assert.Equal(2, d.Unet.WeightFiles.Count);
        using (var source = d.Unet.OpenWeights())
        {
            Assert.Equal(index, source.Name);
            Assert.Equal(["conv_in.bias", "conv_in.weight", "conv_out.bias", "conv_out.weight"], source.Keys.Order());
            Assert.True(source.TryGetShape("conv_out.weight", out var shape));
            Assert.Equal([4L, 4, 3, 3], shape);
            foreach (var (key, expected) in first.Concat(second))
            {
                var got = source.Load(key);
                Assert.Equal(expected.dtype, got.dtype);
                Assert.True(expected.bytes.SequenceEqual(got.bytes), key);
            }
        }

        // The index names a key the shard lacks.
        WriteIndex(map.Append(("conv_norm_out.weight", "diffusion_pytorch_model-00001-of-00002.safetensors")));
        var e = Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir).Unet!.OpenWeights());
        Assert.Contains("'conv_norm_out.weight'", e.Message);
        Assert.Contains(index, e.Message);

        // The index leaves out a key a shard holds.
        WriteIndex(map.Skip(1));
        Assert.Contains("does not list", Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir).Unet!.OpenWeights()).Message);

        // A shard is missing.
        WriteIndex(map);
        File.Delete(Path.Combine(unetDir, "diffusion_pytorch_model-00002-of-00002.safetensors"));
        e = Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(dir));
        Assert.Contains("diffusion_pytorch_model-00002-of-00002.safetensors", e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void ShardedFp16Variant_IsFoundByItsIndexName()
    {
        string dir = MakeFolder();
        string unetDir = Path.Combine(dir, "unet");
        Weights(dir, "unet/diffusion_pytorch_model.fp16-00001-of-00001.safetensors");
        File.WriteAllText(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors.index.fp16.json"),
            "{\"weight_map\": {\"conv.weight\": \"diffusion_pytorch_model.fp16-00001-of-00001.safetensors\", \"conv.bias\": \"diffusion_pytorch_model.fp16-00001-of-00001.safetensors\"}}");
        var d = DiffusersFolder.Describe(dir, new DiffusersFolderOptions { Variant = "fp16" });
        Assert.Equal("fp16", d.Unet!.Variant);
        Assert.Equal(Path.Combine(unetDir, "diffusion_pytorch_model.safetensors.index.fp16.json"), d.Unet.WeightIndexPath);
    }

    [Fact]
    public void ASingleFileCheckpoint_IsDescribedAsSuch()
    {
        var unet = SafeTensorsFile.LoadAll(SharedData.TinyA("unet", "diffusion_pytorch_model.safetensors"));
        var vae = SafeTensorsFile.LoadAll(SharedData.TinyA("vae", "diffusion_pytorch_model.safetensors"));
        var text = SafeTensorsFile.LoadAll(SharedData.TinyA("text_encoder", "model.safetensors"));
        string path = Path.Combine(_root, "tiny.safetensors");
        CompVisCheckpointWriter.Save(path, new DictionarySource("unet", unet), new DictionarySource("vae", vae), new DictionarySource("text", text));

        var d = DiffusersFolder.Describe(path);
        Assert.Equal(CheckpointLayout.SingleFile, d.Layout);
        Assert.Equal(StableDiffusionVersion.V1, d.Version);
        Assert.Equal(path, d.Path);
        Assert.Null(d.Unet);

        // A diffusers component file is not a single-file checkpoint.
        var e = Assert.Throws<CheckpointLayoutException>(() => DiffusersFolder.Describe(SharedData.TinyA("unet", "diffusion_pytorch_model.safetensors")));
        Assert.Contains("diffusers folder", e.Message);
    }
}
