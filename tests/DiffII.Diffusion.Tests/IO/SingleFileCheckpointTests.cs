using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.IO;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.IO;

/// <summary>Keys and shapes without data: enough to exercise every renaming rule on the real SD 1.5/2.1 key sets.</summary>
sealed class ShapeOnlySource(string name, IReadOnlyList<(string Key, long[] Shape)> entries) : ITensorSource
{
    readonly Dictionary<string, long[]> _shapes = entries.ToDictionary(e => e.Key, e => e.Shape);
    public string Name => name;
    public IEnumerable<string> Keys => entries.Select(e => e.Key);
    public bool TryGetShape(string key, out long[] shape) => _shapes.TryGetValue(key, out shape!);
    public Tensor Load(string key) => throw new InvalidOperationException($"{name} holds shapes only; '{key}' has no data.");

    /// <summary>Reads a shared key list: one "key [d0,d1,...] dtype" per line.</summary>
    public static ShapeOnlySource FromKeyList(string file)
    {
        var entries = new List<(string, long[])>();
        foreach (string line in File.ReadLines(SharedData.Path("data", "sd-keys", file)).Where(l => l.Length > 0))
        {
            var parts = line.Split(' ');
            string shape = parts[1].Trim('[', ']');
            entries.Add((parts[0], shape.Length == 0 ? [] : shape.Split(',').Select(long.Parse).ToArray()));
        }
        return new ShapeOnlySource(file, entries);
    }

    public Dictionary<string, string> ShapeTexts() => _shapes.ToDictionary(kv => kv.Key, kv => Text(kv.Value));
    public static string Text(long[] shape) => "[" + string.Join(",", shape) + "]";
}

public class SingleFileCheckpointTests
{
    static readonly string[] LdmExtras =
    [
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "model_ema.decay", "model_ema.num_updates",
    ];

    static Dictionary<string, string> Shapes(ITensorSource source) =>
        source.Keys.ToDictionary(k => k, k => source.TryGetShape(k, out var s) ? ShapeOnlySource.Text(s) : "?");

    static void AssertSameKeysAndShapes(Dictionary<string, string> expected, Dictionary<string, string> got, string what)
    {
        var missing = expected.Keys.Except(got.Keys).Order().ToList();
        var extra = got.Keys.Except(expected.Keys).Order().ToList();
        var wrong = expected.Keys.Intersect(got.Keys).Where(k => expected[k] != got[k]).Select(k => $"{k}: {got[k]} vs {expected[k]}").ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0 && wrong.Count == 0,
            $"{what}: missing {missing.Count} [{string.Join(", ", missing.Take(5))}], extra {extra.Count} [{string.Join(", ", extra.Take(5))}], wrong shape {wrong.Count} [{string.Join(", ", wrong.Take(5))}]");
    }

    /// <summary>Each line "component/diffusers_key original_key" of a keymap file must be a pairing the mapping makes.</summary>
    static void AssertPairings(string keymapFile, SingleFileCheckpoint checkpoint)
    {
        int checkedPairs = 0;
        foreach (string line in File.ReadLines(SharedData.Path("data", "sd-keys", keymapFile)).Where(l => l.Length > 0))
        {
            var parts = line.Split(' ');
            string component = parts[0][..parts[0].IndexOf('/')], diffusersKey = parts[0][(component.Length + 1)..];
            if (diffusersKey.EndsWith("position_ids", StringComparison.Ordinal)) continue; // recreated, not read
            var source = (MappedTensorSource)checkpoint.Component(component);
            Assert.True(source.Entries.TryGetValue(diffusersKey, out var entry), $"{component}/{diffusersKey} is not produced");
            Assert.Equal(parts[1], entry!.Origin);
            checkedPairs++;
        }
        Assert.True(checkedPairs > 900, $"only {checkedPairs} pairings checked");
    }

    [Theory]
    [InlineData("sd15", StableDiffusionVersion.V1, 768)]
    [InlineData("sd21", StableDiffusionVersion.V2, 1024)]
    public void OriginalKeys_MapExactlyOntoTheDiffusersKeyLists_ShapesIncluded(string model, StableDiffusionVersion version, long contextDim)
    {
        var original = ShapeOnlySource.FromKeyList($"{model}_original_single_file.txt");
        using var checkpoint = SingleFileCheckpoint.FromSource(original);
        Assert.Equal(version, checkpoint.Version);
        Assert.Equal(contextDim, checkpoint.CrossAttentionDim);
        Assert.Equal(2, checkpoint.LayersPerBlock);

        foreach (string component in new[] { "unet", "vae", "text_encoder" })
            AssertSameKeysAndShapes(ShapeOnlySource.FromKeyList($"{model}_diffusers_{component}.txt").ShapeTexts(), Shapes(checkpoint.Component(component)), $"{model} {component}");

        // Strict opening already proved that no key is unexplained; these are the ones left out on purpose.
        var expectedIgnored = version == StableDiffusionVersion.V1
            ? [.. LdmExtras, "cond_stage_model.transformer.text_model.embeddings.position_ids"]
            : LdmExtras.Concat(["cond_stage_model.model.text_projection", "cond_stage_model.model.logit_scale"])
                .Concat(original.Keys.Where(k => k.StartsWith("cond_stage_model.model.transformer.resblocks.23.", StringComparison.Ordinal))).ToArray();
        Assert.Equal(expectedIgnored.Order(), checkpoint.IgnoredKeys.Order());
        Assert.Empty(checkpoint.UnknownKeys);
        if (version == StableDiffusionVersion.V2) Assert.Equal(14 + 2 + 12, checkpoint.IgnoredKeys.Count);

        AssertPairings($"{model}_diffusers_to_original_keymap.txt", checkpoint);
    }

    [Fact]
    public void Sd21TextEncoder_SplitsInProjIntoQkvRowsInOrder()
    {
        using var checkpoint = SingleFileCheckpoint.FromSource(ShapeOnlySource.FromKeyList("sd21_original_single_file.txt"));
        var text = (MappedTensorSource)checkpoint.TextEncoder;
        Assert.Equal("cond_stage_model.model.transformer.resblocks.5.attn.in_proj_weight[0:1024]", text.Entries["text_model.encoder.layers.5.self_attn.q_proj.weight"].Origin);
        Assert.Equal("cond_stage_model.model.transformer.resblocks.5.attn.in_proj_weight[1024:2048]", text.Entries["text_model.encoder.layers.5.self_attn.k_proj.weight"].Origin);
        Assert.Equal("cond_stage_model.model.transformer.resblocks.22.attn.in_proj_bias[2048:3072]", text.Entries["text_model.encoder.layers.22.self_attn.v_proj.bias"].Origin);
        Assert.Equal("cond_stage_model.model.positional_embedding", text.Entries["text_model.embeddings.position_embedding.weight"].Origin);
        Assert.Equal("cond_stage_model.model.transformer.resblocks.0.mlp.c_fc.weight", text.Entries["text_model.encoder.layers.0.mlp.fc1.weight"].Origin);
        Assert.Equal("cond_stage_model.model.ln_final.bias", text.Entries["text_model.final_layer_norm.bias"].Origin);
        Assert.DoesNotContain(text.Keys, k => k.StartsWith("text_model.encoder.layers.23.", StringComparison.Ordinal));
    }

    [Fact]
    public void OldClipLayoutWithoutTextModel_MapsToTheSameTextEncoder()
    {
        const string wrapper = "cond_stage_model.transformer.text_model.";
        var original = ShapeOnlySource.FromKeyList("sd15_original_single_file.txt");
        var renamed = new ShapeOnlySource("old.safetensors", original.Keys.Select(k =>
            (k.StartsWith(wrapper, StringComparison.Ordinal) ? "cond_stage_model.transformer." + k[wrapper.Length..] : k, original.TryGetShape(k, out var s) ? s : [])).ToList());
        using var checkpoint = SingleFileCheckpoint.FromSource(renamed);
        Assert.Equal(StableDiffusionVersion.V1, checkpoint.Version);
        AssertSameKeysAndShapes(ShapeOnlySource.FromKeyList("sd15_diffusers_text_encoder.txt").ShapeTexts(), Shapes(checkpoint.TextEncoder), "old CLIP layout");
    }

    [Theory]
    [InlineData("sd15", TextEncoderLayout.Clip)]
    [InlineData("sd21", TextEncoderLayout.OpenClip)]
    public void DiffusersKeys_MapBackOntoTheOriginalKeyList(string model, TextEncoderLayout layout)
    {
        var original = ShapeOnlySource.FromKeyList($"{model}_original_single_file.txt").ShapeTexts();
        var produced = new Dictionary<string, string>();
        foreach (string component in new[] { "unet", "vae", "text_encoder" })
        {
            var (tensors, unmapped) = OriginalKeyMap.ToOriginal(component, ShapeOnlySource.FromKeyList($"{model}_diffusers_{component}.txt"), layout);
            Assert.Empty(unmapped);
            foreach (var t in tensors) produced.Add(t.Key, ShapeOnlySource.Text(t.Shape));
        }
        // What the diffusers components cannot supply: the LDM extras and, for SD 2, OpenCLIP's unused head and last block.
        var expected = original.Where(kv => !LdmExtras.Contains(kv.Key)
                                            && kv.Key is not ("cond_stage_model.model.text_projection" or "cond_stage_model.model.logit_scale")
                                            && !kv.Key.StartsWith("cond_stage_model.model.transformer.resblocks.23.", StringComparison.Ordinal))
            .ToDictionary();
        AssertSameKeysAndShapes(expected, produced, $"{model} diffusers → original");
    }

    [Theory]
    [InlineData("sdxl", new[] { "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight", "model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.encoder.conv_in.weight" }, "SDXL")]
    [InlineData("lora", new[] { "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha" }, "LoRA")]
    [InlineData("diffusers-unet", new[] { "conv_in.weight", "down_blocks.0.resnets.0.conv1.weight", "time_embedding.linear_1.weight" }, "diffusers folder")]
    public void UnknownLayouts_AreRefused_NamingTheFileItsPrefixesAndWhatItLooksLike(string name, string[] keys, string hint)
    {
        var source = new ShapeOnlySource($"/models/{name}.safetensors", keys.Select(k => (k, new long[] { 4, 4 })).ToList());
        var e = Assert.Throws<CheckpointLayoutException>(() => SingleFileCheckpoint.FromSource(source));
        Assert.Contains($"/models/{name}.safetensors", e.Message);
        Assert.Contains("not a Stable Diffusion 1.x/2.x single-file checkpoint", e.Message);
        Assert.Contains(hint, e.Message);
        Assert.Contains("(1)", e.Message); // prefixes are listed with their key counts
        if (name == "sdxl") Assert.Contains("conditioner (1)", e.Message);
        if (name == "lora") Assert.Contains("lora_unet_*", e.Message);
    }

    [Fact]
    public void AnUnexplainedKey_IsAnError_UnlessAskedToIgnoreIt()
    {
        var entries = ShapeOnlySource.FromKeyList("sd15_original_single_file.txt").ShapeTexts()
            .Select(kv => (kv.Key, kv.Value.Trim('[', ']') is var s && s.Length > 0 ? s.Split(',').Select(long.Parse).ToArray() : Array.Empty<long>()))
            .Append(("model.diffusion_model.label_emb.0.0.weight", new long[] { 1280, 1280 })).ToList();
        var source = new ShapeOnlySource("odd.safetensors", entries);
        var e = Assert.Throws<CheckpointLayoutException>(() => SingleFileCheckpoint.FromSource(source));
        Assert.Contains("odd.safetensors", e.Message);
        Assert.Contains("'model.diffusion_model.label_emb.0.0.weight'", e.Message);

        using var lenient = SingleFileCheckpoint.FromSource(source, new SingleFileOpenOptions { IgnoreUnknownKeys = true });
        Assert.Equal(["model.diffusion_model.label_emb.0.0.weight"], lenient.UnknownKeys);
        Assert.Equal(686, lenient.Unet.Keys.Count());
    }

    [Fact]
    public void PickleCheckpoints_AreRefusedWithoutBeingRead()
    {
        string dir = Directory.CreateTempSubdirectory("diffii-pickle-").FullName;
        try
        {
            string ckpt = Path.Combine(dir, "v1-5-pruned.ckpt");
            File.WriteAllBytes(ckpt, [0x80, 0x02, 0x7d, 0x71]);
            var e = Assert.Throws<CheckpointLayoutException>(() => SingleFileCheckpoint.Open(ckpt));
            Assert.Contains(ckpt, e.Message);
            Assert.Contains("Convert it to safetensors", e.Message);

            // A torch zip archive renamed to .safetensors is recognised by its content.
            string disguised = Path.Combine(dir, "model.safetensors");
            File.WriteAllBytes(disguised, [(byte)'P', (byte)'K', 3, 4, 0, 0, 0, 0, 0, 0]);
            Assert.Contains("not supported", Assert.Throws<CheckpointLayoutException>(() => SingleFileCheckpoint.Open(disguised)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    static Dictionary<string, Tensor> TinyComponent(string component) =>
        SafeTensorsFile.LoadAll(SharedData.TinyA(component, component == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors"));

    static void AssertBitIdentical(IReadOnlyDictionary<string, Tensor> expected, ITensorSource got, string what)
    {
        const string positionIds = "text_model.embeddings.position_ids";
        if (what == "text_encoder" && !expected.ContainsKey(positionIds))
        {
            // The tiny text encoder was saved without the buffer; the reader always provides it, as 0..n-1.
            expected = expected.Append(new(positionIds, KeptScalars.Arange(77, ScalarType.Int64).unsqueeze(0))).ToDictionary();
        }
        Assert.Equal(expected.Keys.Order(), got.Keys.Order());
        foreach (var (key, tensor) in expected)
        {
            using var scope = NewDisposeScope();
            var loaded = got.Load(key);
            Assert.True(tensor.dtype == loaded.dtype, $"{what} {key}: dtype {loaded.dtype}, expected {tensor.dtype}");
            Assert.True(tensor.shape.SequenceEqual(loaded.shape), $"{what} {key}: shape {ShapeOnlySource.Text(loaded.shape)}, expected {ShapeOnlySource.Text(tensor.shape)}");
            Assert.True(tensor.contiguous().bytes.SequenceEqual(loaded.contiguous().bytes), $"{what} {key}: values differ");
        }
    }

    [Fact]
    public void TinyA_WrittenAsOneFileAndReadBack_IsBitIdentical()
    {
        string dir = Directory.CreateTempSubdirectory("diffii-single-").FullName;
        try
        {
            var unet = TinyComponent("unet");
            var vae = TinyComponent("vae");
            var text = TinyComponent("text_encoder");
            string path = Path.Combine(dir, "sd-tiny-a.safetensors");
            CompVisCheckpointWriter.Save(path, new DictionarySource("unet", unet), new DictionarySource("vae", vae), new DictionarySource("text_encoder", text));

            using (var file = SafeTensorsFile.Open(path))
            {
                Assert.Equal("pt", file.Metadata["format"]);
                Assert.Equal([64L, 64, 1, 1], file["first_stage_model.decoder.mid.attn_1.proj_out.weight"].Shape);
                Assert.True(file.Contains("model.diffusion_model.input_blocks.3.0.op.weight")); // the tiny UNet's only downsampler
                Assert.True(file.Contains("model.diffusion_model.output_blocks.2.0.skip_connection.weight"));
                Assert.True(file.Contains("cond_stage_model.transformer.text_model.embeddings.position_ids"));
                Assert.Equal(unet.Count + vae.Count + text.Count + 1, file.Keys.Count); // + position_ids, which the original CLIP module always has
            }

            using var checkpoint = SingleFileCheckpoint.Open(path);
            Assert.Equal(StableDiffusionVersion.V1, checkpoint.Version);
            Assert.Equal(32, checkpoint.CrossAttentionDim);
            Assert.Equal(2, checkpoint.LayersPerBlock);
            Assert.Equal($"{path} [vae]", checkpoint.Vae.Name);
            AssertBitIdentical(unet, checkpoint.Unet, "unet");
            AssertBitIdentical(vae, checkpoint.Vae, "vae");
            AssertBitIdentical(text, checkpoint.TextEncoder, "text_encoder");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TinyA_InOpenClipLayout_FusesAndSplitsQkvExactly_AndNeedsTheFinalBlock()
    {
        string dir = Directory.CreateTempSubdirectory("diffii-openclip-").FullName;
        try
        {
            var unet = TinyComponent("unet");
            // bf16 VAE weights and fp16 text weights also check that half-precision tensors pass through untouched.
            var vae = TinyComponent("vae").ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.BFloat16));
            // fp16 text weights also check that F16 tensors pass through untouched.
            var text = TinyComponent("text_encoder").ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? kv.Value.to(ScalarType.Float16) : kv.Value);
            var sources = (new DictionarySource("unet", unet), new DictionarySource("vae", vae), new DictionarySource("text_encoder", text));
            string path = Path.Combine(dir, "tiny-openclip.safetensors");

            var e = Assert.Throws<CheckpointLayoutException>(() => CompVisCheckpointWriter.Save(path, sources.Item1, sources.Item2, sources.Item3,
                new SingleFileSaveOptions { TextEncoderLayout = TextEncoderLayout.OpenClip }));
            Assert.Contains("resblocks.2.attn.in_proj_weight", e.Message);
            Assert.False(File.Exists(path));

            // The block SD 2 does not use, and OpenCLIP's projection head: present in real files, dropped on reading.
            const string block = "cond_stage_model.model.transformer.resblocks.2.";
            var extra = new Dictionary<string, Tensor>
            {
                [block + "attn.in_proj_weight"] = randn(96, 32), [block + "attn.in_proj_bias"] = randn(96),
                [block + "attn.out_proj.weight"] = randn(32, 32), [block + "attn.out_proj.bias"] = randn(32),
                [block + "ln_1.weight"] = randn(32), [block + "ln_1.bias"] = randn(32), [block + "ln_2.weight"] = randn(32), [block + "ln_2.bias"] = randn(32),
                [block + "mlp.c_fc.weight"] = randn(37, 32), [block + "mlp.c_fc.bias"] = randn(37),
                [block + "mlp.c_proj.weight"] = randn(32, 37), [block + "mlp.c_proj.bias"] = randn(32),
                ["cond_stage_model.model.text_projection"] = randn(32, 32), ["cond_stage_model.model.logit_scale"] = tensor(4.6f),
            };
            CompVisCheckpointWriter.Save(path, sources.Item1, sources.Item2, sources.Item3,
                new SingleFileSaveOptions { TextEncoderLayout = TextEncoderLayout.OpenClip, ExtraTensors = new DictionarySource("extra", extra) });

            using (var file = SafeTensorsFile.Open(path))
            {
                Assert.Equal([96L, 32], file["cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight"].Shape);
                Assert.Equal("F16", file["cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight"].DType);
                Assert.False(file.Contains("cond_stage_model.model.transformer.resblocks.0.attn.q_proj.weight"));
                var fused = file.Load("cond_stage_model.model.transformer.resblocks.0.attn.in_proj_bias");
                Assert.True(fused[32..64].contiguous().bytes.SequenceEqual(text["text_model.encoder.layers.0.self_attn.k_proj.bias"].bytes));
            }

            using var checkpoint = SingleFileCheckpoint.Open(path);
            Assert.Equal(StableDiffusionVersion.V2, checkpoint.Version);
            Assert.Equal(TextEncoderLayout.OpenClip, checkpoint.TextEncoderLayout);
            Assert.Contains(block + "attn.in_proj_weight", checkpoint.IgnoredKeys);
            AssertBitIdentical(text, checkpoint.TextEncoder, "text_encoder");
            AssertBitIdentical(vae, checkpoint.Vae, "vae");
        }
        finally { Directory.Delete(dir, true); }
    }
}
