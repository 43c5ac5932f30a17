using System.Diagnostics;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests;

public class ClipTextModelTests
{
    public ClipTextModelTests() => TorchRuntime.EnsureLoaded();

    static ClipTextModel TinyA() => ClipTextModel.FromPretrained(SharedData.TinyA("text_encoder"));

    /// <summary>Reads a key list of sd-keys: one "key [d0,d1,...] dtype" a line.</summary>
    static Dictionary<string, (string Shape, string DType)> ReadKeyList(string file)
    {
        var result = new Dictionary<string, (string, string)>();
        foreach (var line in File.ReadLines(SharedData.Path("data", "sd-keys", file)).Where(l => l.Trim().Length > 0))
        {
            var parts = line.Split(' ');
            Assert.Equal(3, parts.Length);
            result.Add(parts[0], (parts[1], parts[2]));
        }
        return result;
    }

    static string DTypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Int64 => "int64",
        _ => t.ToString(),
    };

    [Theory]
    [InlineData("sd15", "sd15_diffusers_text_encoder.txt", 123_060_480L)]
    [InlineData("sd21", "sd21_diffusers_text_encoder.txt", 340_387_840L)]
    public void StateDict_KeysShapesAndDtypes_EqualTransformersCheckpoint(string model, string keyList, long expectedParams)
    {
        var watch = Stopwatch.StartNew();
        var config = ClipTextConfig.FromFile(SharedData.Path("data", "sd-configs", model, "text_encoder", "config.json"));
        // The meta device allocates no memory, so even the 340M-parameter SD 2.1 tower is built in milliseconds.
        using var clip = new ClipTextModel(config, new Device(DeviceType.META));
        var expected = ReadKeyList(keyList);
        var actual = clip.state_dict().ToDictionary(
            kv => kv.Key,
            kv => ("[" + string.Join(",", kv.Value.shape) + "]", DTypeName(kv.Value.dtype)));

        Assert.Empty(expected.Keys.Except(actual.Keys));
        Assert.Empty(actual.Keys.Except(expected.Keys));
        foreach (var (key, value) in expected) Assert.True(value == actual[key], $"{key}: expected {value}, got {actual[key]}");
        long parameters = clip.parameters().Sum(p => p.NumberOfElements);
        Assert.Equal(expectedParams, parameters);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"building took {watch.Elapsed}");
    }

    [Fact]
    public void Forward_MatchesGoldenLastHiddenState()
    {
        using var scope = NewDisposeScope();
        using var clip = TinyA();
        clip.eval();
        var golden = SafeTensorsFile.LoadAll(SharedData.TinyA("golden.safetensors"));
        var ids = golden["text.input_ids"];
        Tensor hidden;
        using (no_grad()) hidden = clip.forward(ids);
        var expected = golden["text.last_hidden_state"];
        TensorAssert.Close(expected, hidden, 1e-4, 1e-4, "text.last_hidden_state");
        double maxAbs = (hidden - expected).abs().max().item<float>();
        Console.WriteLine($"CLIP text last_hidden_state max |diff| vs golden: {maxAbs:G3}");
        Assert.True(maxAbs < 1e-5, $"max |diff| {maxAbs} is far above the float32 noise the golden README reports");
    }

    [Fact]
    public void Forward_IsCausal_LaterTokensDoNotChangeEarlierStates()
    {
        using var scope = NewDisposeScope();
        using var clip = TinyA();
        var a = tensor(new long[] { 49406, 320, 1125, 539, 49407 }).unsqueeze(0);
        var b = tensor(new long[] { 49406, 320, 1125, 2368, 7998 }).unsqueeze(0);
        using var _ = no_grad();
        var ha = clip.forward(a);
        var hb = clip.forward(b);
        Assert.Equal(0, (ha.narrow(1, 0, 3) - hb.narrow(1, 0, 3)).abs().max().item<float>(), 6);
        Assert.True((ha.narrow(1, 3, 1) - hb.narrow(1, 3, 1)).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void LoadWeights_AcceptsCheckpointsWithAndWithoutPositionIds_AndRejectsOtherExtras()
    {
        using var scope = NewDisposeScope();
        var weights = SafeTensorsFile.LoadAll(SharedData.TinyA("text_encoder", "model.safetensors"));
        Assert.False(weights.ContainsKey(ClipTextModel.PositionIdsKey));
        using var clip = new ClipTextModel(ClipTextConfig.FromFile(SharedData.TinyA("text_encoder", "config.json")));

        Assert.Equal(weights.Count, clip.LoadWeights(new DictionarySource("without", weights)));

        // Old checkpoints store the buffer, sometimes as float with rounding damage; it is accepted and then ignored.
        var withIds = new Dictionary<string, Tensor>(weights) { [ClipTextModel.PositionIdsKey] = KeptScalars.Arange(77, ScalarType.Float32).Sub(0.25).unsqueeze(0) };
        Assert.Equal(weights.Count + 1, clip.LoadWeights(new DictionarySource("with", withIds)));
        Assert.True(clip.state_dict()[ClipTextModel.PositionIdsKey].eq(KeptScalars.Arange(77, ScalarType.Int64).unsqueeze(0)).all().item<bool>());

        var withExtra = new Dictionary<string, Tensor>(weights) { ["text_projection.weight"] = zeros(32, 32) };
        var e = Assert.Throws<CheckpointMismatchException>(() => clip.LoadWeights(new DictionarySource("extra.safetensors", withExtra)));
        Assert.Contains("unexpected 'text_projection.weight'", e.Message);
    }

    [Fact]
    public void ModelBuiltAndGrownInsideADisposeScope_KeepsItsWeightsAfterTheScopeEnds()
    {
        ClipTextModel clip;
        using (NewDisposeScope())
        {
            clip = TinyA();
            clip.AddTokenEmbeddings(1, initFromTokenId: 320);
        }
        using (clip)
        using (NewDisposeScope())
        {
            var state = clip.state_dict();
            Assert.Equal(3 + 2 * 16 + 2, state.Count); // embeddings (with position_ids), 2 layers, final layer norm
            Assert.All(state.Values, t => Assert.False(t.IsInvalid));
            using var _ = no_grad();
            var hidden = clip.forward(tensor(new long[] { 49406, 49408, 49407 }).unsqueeze(0));
            Assert.Equal([1L, 3L, 32L], hidden.shape);
        }
    }

    [Fact]
    public void PooledOutput_LegacyConfigUsesArgmaxOfIds_NewConfigUsesFirstEos()
    {
        using var scope = NewDisposeScope();
        using var legacy = TinyA();
        Assert.Equal(2, legacy.Config.EosTokenId);
        // Sequence 0 ends in EOT (49407) then padding 0; sequence 1 also has an added token 49408 after EOT.
        var ids = tensor(new long[,] { { 49406, 320, 49407, 0, 0 }, { 49406, 320, 49407, 49408, 0 } });
        var hidden = randn(2, 5, 32);
        var pooledLegacy = legacy.PooledOutput(hidden, ids);
        TensorAssert.Close(stack([hidden[0, 2], hidden[1, 3]]), pooledLegacy, 0, 0, "legacy pooling (argmax of ids)");

        using var modern = new ClipTextModel(legacy.Config with { EosTokenId = 49407 }, new Device(DeviceType.META));
        var pooledModern = modern.PooledOutput(hidden, ids);
        TensorAssert.Close(stack([hidden[0, 2], hidden[1, 2]]), pooledModern, 0, 0, "eos pooling (first eos_token_id)");
    }

    [Fact]
    public void AddTokenEmbeddings_KeepsOldRowsBitIdentical_AndNewRowsAreUsable()
    {
        using var scope = NewDisposeScope();
        using var clip = TinyA();
        var before = clip.text_model.embeddings.token_embedding.weight!.detach().clone();
        var ids = tensor(new long[] { 49406, 320, 2368, 49407 }).unsqueeze(0);
        Tensor reference;
        using (no_grad()) reference = clip.forward(ids);

        int[] added = clip.AddTokenEmbeddings(2, initFromTokenId: 2368);
        Assert.Equal([49408, 49409], added);
        Assert.Equal(49410, clip.VocabSize);
        var after = clip.state_dict()["text_model.embeddings.token_embedding.weight"];
        Assert.Equal([49410L, 32L], after.shape);
        Assert.True(after.narrow(0, 0, 49408).eq(before).all().item<bool>(), "old rows must stay bit-identical");
        Assert.True(after[49408].eq(before[2368]).all().item<bool>());
        Assert.True(after[49409].eq(before[2368]).all().item<bool>());
        Assert.True(after.requires_grad);

        // The new token initialised from "cat" encodes exactly like "cat"; the model still gives the same output for old ids.
        using (no_grad())
        {
            TensorAssert.Close(reference, clip.forward(ids), 0, 0, "old ids after growth");
            var withNew = tensor(new long[] { 49406, 320, 49408, 49407 }).unsqueeze(0);
            TensorAssert.Close(reference, clip.forward(withNew), 0, 0, "new token initialised from 'cat'");
        }

        var learned = randn(2, 32);
        clip.SetTokenEmbeddings(added, learned);
        TensorAssert.Close(learned, clip.GetTokenEmbeddings(added), 0, 0, "rows written then read");
        Assert.True(clip.GetTokenEmbeddings([0, 49407]).eq(before.index_select(0, tensor(new long[] { 0, 49407 }))).all().item<bool>());

        int[] fromRows = clip.AddTokenEmbeddings(learned.narrow(0, 0, 1));
        Assert.Equal([49410], fromRows);
        TensorAssert.Close(learned.narrow(0, 0, 1), clip.GetTokenEmbeddings(fromRows), 0, 0, "rows given explicitly");

        Assert.Throws<ArgumentOutOfRangeException>(() => clip.AddTokenEmbeddings(1, initFromTokenId: 49411));
        Assert.Throws<ArgumentException>(() => clip.SetTokenEmbeddings([0], zeros(1, 31)));
    }

    [Fact]
    public void Config_FromFile_DefaultsUnknownKeysAndErrors()
    {
        var sd21 = ClipTextConfig.FromFile(SharedData.Path("data", "sd-configs", "sd21", "text_encoder", "config.json"));
        Assert.Equal((1024, 4096, 23, 16, "gelu", 512), (sd21.HiddenSize, sd21.IntermediateSize, sd21.NumHiddenLayers, sd21.NumAttentionHeads, sd21.HiddenAct, sd21.ProjectionDim));

        string dir = Directory.CreateTempSubdirectory("cliptextconfig").FullName;
        try
        {
            string minimal = Path.Combine(dir, "minimal.json");
            File.WriteAllText(minimal, """{"hidden_size": 64, "num_attention_heads": 4, "some_future_key": [1, 2]}""");
            var config = ClipTextConfig.FromFile(minimal);
            Assert.Equal((64, 4, 2048, 12, 77, "quick_gelu", 49407, 49406, 1), (config.HiddenSize, config.NumAttentionHeads, config.IntermediateSize,
                config.NumHiddenLayers, config.MaxPositionEmbeddings, config.HiddenAct, config.EosTokenId, config.BosTokenId, config.PadTokenId));

            string badAct = Path.Combine(dir, "bad.json");
            File.WriteAllText(badAct, """{"hidden_act": "relu"}""");
            var e = Assert.Throws<InvalidDataException>(() => ClipTextConfig.FromFile(badAct));
            Assert.Contains(badAct, e.Message);
            Assert.Contains("'hidden_act'", e.Message);

            string badHeads = Path.Combine(dir, "heads.json");
            File.WriteAllText(badHeads, """{"hidden_size": 30, "num_attention_heads": 4}""");
            Assert.Contains("'num_attention_heads'", Assert.Throws<InvalidDataException>(() => ClipTextConfig.FromFile(badHeads)).Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
