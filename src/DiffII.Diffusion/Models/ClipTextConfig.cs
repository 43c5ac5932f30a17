using System.Text.Json;
using System.Text.Json.Serialization;

namespace DiffII.Diffusion.Models;

/// <summary>
/// The text half of a transformers <c>CLIPTextConfig</c> (<c>text_encoder/config.json</c> in a diffusers folder).
/// Property names are the config.json keys; absent keys take transformers' defaults and unknown keys are ignored.
/// </summary>
public sealed record ClipTextConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 49408;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 512;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 2048;
    [JsonPropertyName("projection_dim")] public int ProjectionDim { get; init; } = 512;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 12;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 8;
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 77;
    /// <summary>quick_gelu (SD 1.x, OpenAI CLIP), gelu (SD 2.x, OpenCLIP; the exact erf form) or gelu_new (tanh approximation).</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "quick_gelu";
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-5;
    [JsonPropertyName("pad_token_id")] public int PadTokenId { get; init; } = 1;
    /// <summary>transformers' default since v4.31 (PR #24773); SD 1.5/2.1 configs were written earlier and carry 0.</summary>
    [JsonPropertyName("bos_token_id")] public int BosTokenId { get; init; } = 49406;
    /// <summary>transformers' default since v4.31; SD 1.5/2.1 configs carry the legacy value 2, which changes pooling.</summary>
    [JsonPropertyName("eos_token_id")] public int EosTokenId { get; init; } = 49407;

    public static readonly IReadOnlyList<string> SupportedActivations = ["quick_gelu", "gelu", "gelu_new"];

    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>The config as transformers writes it (plus the keys diffusers looks for).</summary>
    public string ToJson()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(JsonSerializer.Serialize(this))!.AsObject();
        node["architectures"] = new System.Text.Json.Nodes.JsonArray("CLIPTextModel");
        node["model_type"] = "clip_text_model";
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Reads and validates a config.json; errors name the file and the field.</summary>
    public static ClipTextConfig FromFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CLIP text config not found: {path}", path);
        ClipTextConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<ClipTextConfig>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid CLIP text config ({e.Message})", e);
        }
        if (config is null) throw new InvalidDataException($"{path}: the file holds null, not a CLIP text config.");
        config.Validate(path);
        return config;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming <paramref name="source"/> and the offending field.</summary>
    public void Validate(string source = "CLIP text config")
    {
        void Positive(int value, string key)
        {
            if (value <= 0) throw new InvalidDataException($"{source}: '{key}' must be positive, got {value}.");
        }
        Positive(VocabSize, "vocab_size");
        Positive(HiddenSize, "hidden_size");
        Positive(IntermediateSize, "intermediate_size");
        Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(MaxPositionEmbeddings, "max_position_embeddings");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new InvalidDataException($"{source}: 'hidden_size' ({HiddenSize}) is not divisible by 'num_attention_heads' ({NumAttentionHeads}).");
        if (!SupportedActivations.Contains(HiddenAct))
            throw new InvalidDataException($"{source}: 'hidden_act' is '{HiddenAct}'; supported: {string.Join(", ", SupportedActivations)}.");
        if (!(LayerNormEps > 0)) throw new InvalidDataException($"{source}: 'layer_norm_eps' must be positive, got {LayerNormEps}.");
    }
}
