using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace DiffII.Diffusion.Text;

// Reading and writing a transformers/diffusers tokenizer folder (vocab.json, merges.txt, tokenizer_config.json,
// special_tokens_map.json, added_tokens.json). The encoding itself is in ClipTokenizer.cs.
public sealed partial class ClipTokenizer
{
    /// <summary>Loads a diffusers/transformers <c>tokenizer/</c> folder: vocab.json, merges.txt, and when present
    /// tokenizer_config.json, special_tokens_map.json (its entries win) and added_tokens.json.</summary>
    public static ClipTokenizer FromFolder(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Tokenizer folder not found: {folder}");
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        string mapPath = Path.Combine(folder, "special_tokens_map.json");
        string addedPath = Path.Combine(folder, "added_tokens.json");
        var config = ClipTokenizerConfigFile.ReadIfPresent(configPath);
        var map = ClipTokenizerConfigFile.ReadIfPresent(mapPath);

        var defaults = new ClipTokenizerOptions();
        string Pick(Func<ClipTokenizerConfigFile, TokenSpec?> field, string fallback) =>
            (map is null ? null : field(map)?.Content) ?? (config is null ? null : field(config)?.Content) ?? fallback;
        var options = new ClipTokenizerOptions
        {
            BosToken = Pick(c => c.BosToken, defaults.BosToken),
            EosToken = Pick(c => c.EosToken, defaults.EosToken),
            UnkToken = Pick(c => c.UnkToken, defaults.UnkToken),
            PadToken = Pick(c => c.PadToken, defaults.PadToken),
            ModelMaxLength = ReadModelMaxLength(config, configPath) ?? defaults.ModelMaxLength,
        };

        var saved = new List<(int, string, bool, string)>();
        if (config?.AddedTokensDecoder is { } decoder)
            foreach (var (key, spec) in decoder)
            {
                if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id))
                    throw new InvalidDataException($"{configPath}: added_tokens_decoder key '{key}' is not a token id.");
                string content = spec?.Content ?? throw new InvalidDataException($"{configPath}: added_tokens_decoder entry '{key}' has no content.");
                saved.Add((id, content, spec.Special ?? false, configPath + " (added_tokens_decoder)"));
            }
        foreach (var (content, id) in ReadAddedTokensJson(addedPath))
        {
            int index = saved.FindIndex(t => t.Item1 == id);
            if (index < 0) saved.Add((id, content, false, addedPath));
            else if (saved[index].Item2 != content)
                throw new InvalidDataException($"Added token id {id} is '{saved[index].Item2}' in {configPath} but '{content}' in {addedPath}.");
        }
        var extraSpecials = (map?.AdditionalSpecialTokens ?? config?.AdditionalSpecialTokens ?? [])
            .Select(t => t?.Content ?? throw new InvalidDataException($"{folder}: additional_special_tokens holds a null entry.")).ToList();

        var tokenizer = new ClipTokenizer(Path.Combine(folder, "vocab.json"), Path.Combine(folder, "merges.txt"), options, saved);
        foreach (string special in extraSpecials) tokenizer.RegisterSpecial(special);
        return tokenizer;
    }

    /// <summary>Builds a tokenizer from explicit vocab.json / merges.txt paths (defaults: Stable Diffusion 1.x).</summary>
    public static ClipTokenizer FromFiles(string vocabPath, string mergesPath, ClipTokenizerOptions? options = null) =>
        new(vocabPath, mergesPath, options ?? ClipTokenizerOptions.StableDiffusion1, []);

    /// <summary>
    /// Writes a transformers/diffusers tokenizer folder: vocab.json, merges.txt, tokenizer_config.json,
    /// special_tokens_map.json and added_tokens.json, which <see cref="FromFolder"/> (and transformers) load back.
    /// </summary>
    public void SaveFolder(string folder)
    {
        Directory.CreateDirectory(folder);
        var utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

        WriteJson(Path.Combine(folder, "vocab.json"), indented: false, w =>
        {
            w.WriteStartObject();
            for (int id = 0; id < _baseTokens.Length; id++) w.WriteNumber(_baseTokens[id], id);
            w.WriteEndObject();
        });

        var merges = new StringBuilder("#version: 0.2\n");
        foreach (var (left, right) in _merges) merges.Append(left).Append(' ').Append(right).Append('\n');
        File.WriteAllText(Path.Combine(folder, "merges.txt"), merges.ToString(), utf8);

        WriteJson(Path.Combine(folder, "special_tokens_map.json"), indented: true, w =>
        {
            w.WriteStartObject();
            WriteSpecialTokenNames(w);
            w.WriteEndObject();
        });

        WriteJson(Path.Combine(folder, "tokenizer_config.json"), indented: true, w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("add_prefix_space", false);
            w.WriteStartObject("added_tokens_decoder");
            foreach (var (id, content) in _addedTokensById.OrderBy(kv => kv.Key))
            {
                bool special = _specialIds.Contains(id);
                w.WriteStartObject(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
                w.WriteString("content", content);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("normalized", !special);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("special", special);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteBoolean("do_lower_case", true);
            w.WriteString("errors", "replace");
            w.WriteNumber("model_max_length", ModelMaxLength);
            w.WriteString("tokenizer_class", "CLIPTokenizer");
            WriteSpecialTokenNames(w);
            w.WriteEndObject();
        });

        WriteJson(Path.Combine(folder, "added_tokens.json"), indented: true, w =>
        {
            w.WriteStartObject();
            for (int i = 0; i < _appendedTokens.Count; i++) w.WriteNumber(_appendedTokens[i], _baseTokens.Length + i);
            w.WriteEndObject();
        });
    }

    void WriteSpecialTokenNames(Utf8JsonWriter w)
    {
        w.WriteString("bos_token", BosToken);
        w.WriteString("eos_token", EosToken);
        w.WriteString("pad_token", PadToken);
        w.WriteString("unk_token", UnkToken);
        var extra = _specialIds.Select(id => _addedTokensById[id]).Where(t => t != BosToken && t != EosToken && t != PadToken && t != UnkToken).ToList();
        if (extra.Count == 0) return;
        w.WriteStartArray("additional_special_tokens");
        foreach (string token in extra) w.WriteStringValue(token);
        w.WriteEndArray();
    }

    static void WriteJson(string path, bool indented, Action<Utf8JsonWriter> write)
    {
        using var stream = File.Create(path);
        // Relaxed escaping keeps the vocabulary's byte-alphabet characters readable, as transformers writes them.
        using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        write(writer);
        writer.Flush();
        stream.WriteByte((byte)'\n');
    }

    static int? ReadModelMaxLength(ClipTokenizerConfigFile? config, string path)
    {
        if (config?.ModelMaxLength is not double value) return null;
        if (value >= 1e29) return null; // transformers' VERY_LARGE_INTEGER: no length was set.
        if (value != Math.Floor(value) || value < 2 || value > 1 << 20)
            throw new InvalidDataException($"{path}: model_max_length must be a whole number from 2 to {1 << 20}, got {value}.");
        return (int)value;
    }

    static (Dictionary<string, int> Vocab, string[] Tokens) ReadVocab(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CLIP vocabulary file not found: {path}", path);
        Dictionary<string, int>? vocab;
        try
        {
            using var stream = File.OpenRead(path);
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(stream);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"CLIP vocabulary '{path}' is not a JSON object of token → id: {e.Message}", e);
        }
        if (vocab is null || vocab.Count == 0) throw new InvalidDataException($"CLIP vocabulary '{path}' is empty.");
        var tokens = new string[vocab.Count];
        foreach (var (token, id) in vocab)
        {
            if ((uint)id >= (uint)tokens.Length || tokens[id] is not null)
                throw new InvalidDataException($"CLIP vocabulary '{path}': token '{token}' has id {id}; the {tokens.Length} ids must be 0..{tokens.Length - 1}, each used once.");
            tokens[id] = token;
        }
        return (new Dictionary<string, int>(vocab, StringComparer.Ordinal), tokens);
    }

    static List<(string, string)> ReadMerges(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CLIP merges file not found: {path}", path);
        var merges = new List<(string, string)>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal)) continue;
            string[] parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0) continue;
            if (parts.Length != 2)
                throw new InvalidDataException($"CLIP merges '{path}' line {lineNumber}: expected two space-separated symbols, got \"{line}\".");
            merges.Add((parts[0], parts[1]));
            if (merges.Count == MaxMerges) break;
        }
        return merges;
    }

    static IEnumerable<(string Token, int Id)> ReadAddedTokensJson(string path)
    {
        if (!File.Exists(path)) return [];
        try
        {
            var added = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(path))
                ?? throw new InvalidDataException($"Added tokens file '{path}' holds JSON null instead of an object.");
            return added.Select(kv => (kv.Key, kv.Value)).ToList();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Added tokens file '{path}' is not a JSON object of token → id: {e.Message}", e);
        }
    }
}
