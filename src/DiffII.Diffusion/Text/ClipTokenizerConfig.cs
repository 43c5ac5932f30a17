using System.Text.Json;
using System.Text.Json.Serialization;

namespace DiffII.Diffusion.Text;

/// <summary>Settings of a <see cref="ClipTokenizer"/> that a diffusers <c>tokenizer/</c> folder keeps in its JSON files.</summary>
public sealed record ClipTokenizerOptions
{
    /// <summary>transformers' <c>CLIPTokenizer</c> defaults, which Stable Diffusion 1.x uses (padding with <c>&lt;|endoftext|&gt;</c>).</summary>
    public static ClipTokenizerOptions StableDiffusion1 { get; } = new();

    /// <summary>Stable Diffusion 2.x (OpenCLIP text tower): the same, but padding with <c>!</c> (id 0).</summary>
    public static ClipTokenizerOptions StableDiffusion2 { get; } = new() { PadToken = "!" };

    public string BosToken { get; init; } = ClipPreTokenizer.StartOfText;
    public string EosToken { get; init; } = ClipPreTokenizer.EndOfText;
    public string UnkToken { get; init; } = ClipPreTokenizer.EndOfText;
    public string PadToken { get; init; } = ClipPreTokenizer.EndOfText;

    /// <summary>Sequence length of the text encoder (77 for every Stable Diffusion text encoder): BOS + up to 75 tokens + EOS.</summary>
    public int ModelMaxLength { get; init; } = 77;
}

/// <summary>A token entry of a transformers config: either a bare string or an <c>AddedToken</c> object.</summary>
internal sealed record TokenSpec(
    [property: JsonPropertyName("content")] string? Content,
    [property: JsonPropertyName("special")] bool? Special = null);

/// <summary>The parts of transformers' <c>tokenizer_config.json</c> / <c>special_tokens_map.json</c> a CLIP tokenizer uses.</summary>
internal sealed record ClipTokenizerConfigFile
{
    [JsonPropertyName("bos_token")] public TokenSpec? BosToken { get; init; }
    [JsonPropertyName("eos_token")] public TokenSpec? EosToken { get; init; }
    [JsonPropertyName("unk_token")] public TokenSpec? UnkToken { get; init; }
    [JsonPropertyName("pad_token")] public TokenSpec? PadToken { get; init; }
    [JsonPropertyName("additional_special_tokens")] public List<TokenSpec>? AdditionalSpecialTokens { get; init; }

    /// <summary>A double because transformers writes 1e30 ("VERY_LARGE_INTEGER") when the length is unset.</summary>
    [JsonPropertyName("model_max_length")] public double? ModelMaxLength { get; init; }

    /// <summary>transformers ≥ 4.34: id (as a string) → added token, including the special tokens.</summary>
    [JsonPropertyName("added_tokens_decoder")] public Dictionary<string, TokenSpec>? AddedTokensDecoder { get; init; }

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        Converters = { new TokenSpecConverter() },
        AllowTrailingCommas = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
    };

    public static ClipTokenizerConfigFile? ReadIfPresent(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<ClipTokenizerConfigFile>(File.ReadAllText(path), JsonOptions)
                ?? throw new InvalidDataException($"Tokenizer config '{path}' holds JSON null instead of an object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Tokenizer config '{path}' is not valid: {e.Message}", e);
        }
    }

    sealed class TokenSpecConverter : JsonConverter<TokenSpec>
    {
        public override TokenSpec? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.String:
                    return new TokenSpec(reader.GetString());
                case JsonTokenType.StartObject:
                    string? content = null;
                    bool? special = null;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        string name = reader.GetString()!;
                        reader.Read();
                        if (name == "content") content = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw new JsonException("\"content\" must be a string.");
                        else if (name == "special") special = reader.TokenType is JsonTokenType.True or JsonTokenType.False ? reader.GetBoolean() : throw new JsonException("\"special\" must be true or false.");
                        else reader.Skip();
                    }
                    return new TokenSpec(content ?? throw new JsonException("An added-token object has no \"content\"."), special);
                default:
                    throw new JsonException($"A token must be a string or an object with \"content\", not {reader.TokenType}.");
            }
        }

        public override void Write(Utf8JsonWriter writer, TokenSpec value, JsonSerializerOptions options) =>
            writer.WriteStringValue(value.Content);
    }
}
