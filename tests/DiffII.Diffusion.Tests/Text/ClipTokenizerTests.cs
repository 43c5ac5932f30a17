using System.Diagnostics;
using System.Text.Json;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Text;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Text;

public sealed class ClipTokenizerTests
{
    static string ClipData(string file) => SharedData.Path("data", "clip-tokenizer", file);

    // Loading 49k vocabulary entries and 48k merges takes a moment; tests that do not add tokens share these.
    static readonly Lazy<ClipTokenizer> Reference = new(() => ClipTokenizer.FromFiles(ClipData("vocab.json"), ClipData("merges.txt")));
    static readonly Lazy<ClipTokenizer> TinyA = new(() => ClipTokenizer.FromFolder(SharedData.TinyA("tokenizer")));

    static ClipTokenizer FreshTinyA() => ClipTokenizer.FromFolder(SharedData.TinyA("tokenizer"));

    public static IEnumerable<object[]> GoldenCases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(ClipData("clip_golden_ids.json")));
        int index = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
            yield return [index++, c.GetProperty("prompt").GetString()!, c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray()];
    }

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void Golden_ids_of_openai_reference_tokenizer(int index, string prompt, int[] expected)
    {
        var ids = Reference.Value.Encode(prompt);
        Assert.True(expected.SequenceEqual(ids), $"case {index} \"{prompt}\": expected [{string.Join(", ", expected)}], got [{string.Join(", ", ids)}]");
    }

    [Fact]
    public void Golden_file_has_all_34_cases() => Assert.Equal(34, GoldenCases().Count());

    [Fact]
    public void Special_ids_and_sizes_come_from_the_folder()
    {
        var tok = TinyA.Value;
        Assert.Equal(49406, tok.BosTokenId);
        Assert.Equal(49407, tok.EosTokenId);
        Assert.Equal(49407, tok.PadTokenId);
        Assert.Equal(49407, tok.UnkTokenId);
        Assert.Equal(49408, tok.VocabSize);
        Assert.Equal(49408, tok.BaseVocabSize);
        Assert.Equal(77, tok.ModelMaxLength);
        Assert.Empty(tok.AddedTokens);
    }

    [Fact]
    public void Tiny_a_prompts_match_golden_ids_and_input_ids_tensor()
    {
        using var golden = JsonDocument.Parse(File.ReadAllText(SharedData.TinyA("golden.json")));
        var prompts = golden.RootElement.GetProperty("prompts").EnumerateArray().Select(p => p.GetString()!).ToArray();
        var expectedIds = golden.RootElement.GetProperty("token_ids_unpadded").EnumerateArray()
            .Select(row => row.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
        Assert.Equal(3, prompts.Length);

        var tok = TinyA.Value;
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(expectedIds[i], tok.Encode(prompts[i]));

        using var file = SafeTensorsFile.Open(SharedData.TinyA("golden.safetensors"));
        using var expected = file.Load("text.input_ids");
        using var got = tok.EncodeBatch(prompts);
        Assert.Equal(ScalarType.Int64, got.dtype);
        Assert.Equal([3L, 77L], got.shape);
        Assert.Equal(expected.data<long>().ToArray(), got.data<long>().ToArray());
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(expected[i].data<long>().ToArray(), tok.EncodePadded(prompts[i]));
    }

    [Fact]
    public void Long_prompt_is_truncated_to_77_ids_ending_with_eos()
    {
        var tok = TinyA.Value;
        string prompt = string.Join(' ', Enumerable.Range(0, 200).Select(i => i % 2 == 0 ? "cat" : "dog"));
        var ids = tok.Encode(prompt);
        Assert.Equal(77, ids.Count);
        Assert.Equal(tok.BosTokenId, ids[0]);
        Assert.Equal(tok.EosTokenId, ids[^1]);
        Assert.Equal(Enumerable.Range(0, 75).Select(i => i % 2 == 0 ? 2368 : 1929), ids.Skip(1).Take(75)); // cat</w>, dog</w>
        Assert.Equal(202, tok.Encode(prompt, addSpecialTokens: true, truncate: false).Count);
        Assert.Equal(ids.Select(i => (long)i), tok.EncodePadded(prompt));
    }

    [Fact]
    public void Sd2_style_config_pads_with_exclamation_mark_id_0()
    {
        using var folder = new TempFolder();
        CopyVocabAndMerges(folder.Path);
        // SD 2.x: tokenizer_config says <|endoftext|>, special_tokens_map.json overrides it with "!".
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer_config.json"),
            File.ReadAllText(SharedData.Path("data", "sd-configs", "sd21", "tokenizer", "tokenizer_config.json")));
        File.WriteAllText(Path.Combine(folder.Path, "special_tokens_map.json"), """
            {"bos_token": {"content": "<|startoftext|>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false},
             "eos_token": {"content": "<|endoftext|>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false},
             "pad_token": "!",
             "unk_token": {"content": "<|endoftext|>", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false}}
            """);
        var tok = ClipTokenizer.FromFolder(folder.Path);
        Assert.Equal("!", tok.PadToken);
        Assert.Equal(0, tok.PadTokenId);
        Assert.Equal(49407, tok.EosTokenId);

        long[] padded = tok.EncodePadded("a photo of a cat");
        Assert.Equal(new long[] { 49406, 320, 1125, 539, 320, 2368, 49407 }, padded[..7]);
        Assert.All(padded[7..], id => Assert.Equal(0L, id));

        // As in transformers, special tokens are cut out before BPE: "!" is the pad token (0), not "!</w>" (256).
        Assert.Equal([49406, 320, 2368, 0, 49407], tok.Encode("a cat!"));
        Assert.Equal([49406, 320, 2368, 256, 49407], TinyA.Value.Encode("a cat!"));
    }

    [Fact]
    public void Pad_token_may_be_an_object_in_special_tokens_map()
    {
        using var folder = new TempFolder();
        CopyVocabAndMerges(folder.Path);
        File.WriteAllText(Path.Combine(folder.Path, "special_tokens_map.json"),
            """{"pad_token": {"content": "!", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false}}""");
        var tok = ClipTokenizer.FromFolder(folder.Path);
        Assert.Equal(0, tok.PadTokenId);
        Assert.Equal(49406, tok.BosTokenId); // defaults of CLIPTokenizer for the rest
        Assert.Equal(77, tok.ModelMaxLength);
    }

    [Fact]
    public void Added_token_is_one_id_inside_a_prompt()
    {
        var tok = FreshTinyA();
        Assert.Equal([49406, 320, 1125, 539, 320, 283, 1874, 318, 274, 285, 3329, 49407], tok.Encode("a photo of a <class_3> bird"));

        int id = tok.AddToken("<class_3>");
        Assert.Equal(49408, id);
        Assert.Equal(49409, tok.VocabSize);
        Assert.True(tok.TryGetTokenId("<class_3>", out int found));
        Assert.Equal(id, found);
        Assert.Equal([49406, 320, 1125, 539, 320, id, 3329, 49407], tok.Encode("a photo of a <class_3> bird"));
        // Cut out of the raw text before clean-up, so no surrounding spaces are needed.
        Assert.Equal([49406, 320, id, 3329, 49407], tok.Encode("a<class_3>bird"));
        // Matched case-sensitively, like transformers' added-token trie for CLIPTokenizer.
        Assert.DoesNotContain(id, tok.Encode("a photo of a <CLASS_3> bird"));
        Assert.Equal(["a</w>", "<class_3>", "bird</w>"], tok.Tokenize("a <class_3> bird"));
    }

    [Fact]
    public void Adding_an_existing_token_is_an_error_naming_it()
    {
        var tok = FreshTinyA();
        tok.AddToken("<class_3>");
        var again = Assert.Throws<ArgumentException>(() => tok.AddToken("<class_3>"));
        Assert.Contains("<class_3>", again.Message);
        var inVocab = Assert.Throws<ArgumentException>(() => tok.AddToken("cat</w>"));
        Assert.Contains("cat</w>", inVocab.Message);
        var special = Assert.Throws<ArgumentException>(() => tok.AddToken("<|endoftext|>"));
        Assert.Contains("<|endoftext|>", special.Message);
        // AddTokens is all-or-nothing.
        Assert.Throws<ArgumentException>(() => tok.AddTokens(["<new_1>", "<class_3>"]));
        Assert.False(tok.TryGetTokenId("<new_1>", out _));
        Assert.Equal(49409, tok.VocabSize);
    }

    [Fact]
    public void Longest_added_token_wins()
    {
        var tok = FreshTinyA();
        var ids = tok.AddTokens(["<ph>", "<ph>2"]);
        Assert.Equal([49406, 320, ids[1], 321, 49407], tok.Encode("a <ph>2 b"));
        Assert.Equal([49406, 320, ids[0], 321, 49407], tok.Encode("a <ph> b"));
    }

    [Fact]
    public void Thousand_added_tokens_stay_unique_and_encoding_stays_fast()
    {
        var tok = FreshTinyA();
        var names = Enumerable.Range(0, 1000).Select(i => $"<class_{i}>").ToList();
        var watch = Stopwatch.StartNew();
        var ids = tok.AddTokens(names);
        Assert.Equal(Enumerable.Range(49408, 1000), ids);
        Assert.Equal(50408, tok.VocabSize);
        Assert.Equal(names, tok.AddedTokens);

        string prompt = "a photo of a <class_1> next to a <class_10>, a <class_100> and a <class_999> bird";
        IReadOnlyList<int> Plain(string text) => tok.Encode(text, addSpecialTokens: false);
        var expected = new List<int> { 49406 };
        expected.AddRange(Plain("a photo of a"));
        expected.Add(49409);
        expected.AddRange(Plain("next to a"));
        expected.Add(49418);
        expected.AddRange(Plain(", a"));
        expected.Add(49508);
        expected.AddRange(Plain("and a"));
        expected.Add(50407);
        expected.AddRange([3329, 49407]);
        Assert.Equal(18, expected.Count);
        for (int i = 0; i < 2000; i++)
            Assert.Equal(expected, tok.Encode(prompt));
        watch.Stop();
        // 2,000 encodes with 1,000 added tokens take a few tens of milliseconds; a per-call rebuild would take seconds.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed.TotalMilliseconds:F0} ms");

        for (int i = 0; i < names.Count; i++)
        {
            Assert.True(tok.TryGetTokenId(names[i], out int id));
            Assert.Equal(49408 + i, id);
        }
    }

    [Fact]
    public void Decode_round_trips_prompts_and_added_tokens()
    {
        var tok = FreshTinyA();
        tok.AddToken("<class_3>");
        Assert.Equal("a photo of a <class_3> bird", tok.Decode(tok.Encode("a photo of a <class_3> bird")));
        Assert.Equal("<class_3> bird <class_3>", tok.Decode(tok.Encode("<class_3> bird <class_3>")));
        Assert.Equal("café naïve résumé", tok.Decode(tok.Encode("café naïve résumé")));
        Assert.Equal("a photo of a cat", tok.Decode(tok.EncodePadded("A PHOTO of  a Cat").Select(i => (int)i)));
        // transformers' decode(skip_special_tokens=False) and clean_up_tokenization_spaces.
        Assert.Equal("<|startoftext|>a photo of a cat <|endoftext|>", tok.Decode(tok.Encode("a photo of a cat"), skipSpecialTokens: false));
        Assert.Equal("hello , world !", tok.Decode(tok.Encode("Hello, world!")));
        Assert.Equal("hello, world!", tok.Decode(tok.Encode("Hello, world!"), cleanUpTokenizationSpaces: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([49409]));
    }

    [Fact]
    public void Save_and_load_round_trips_added_tokens_and_settings()
    {
        using var folder = new TempFolder();
        var tok = FreshTinyA();
        var ids = tok.AddTokens(Enumerable.Range(0, 12).Select(i => $"<class_{i}>"));
        tok.SaveFolder(folder.Path);
        foreach (string file in new[] { "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json" })
            Assert.True(File.Exists(Path.Combine(folder.Path, file)), file);

        var loaded = ClipTokenizer.FromFolder(folder.Path);
        Assert.Equal(tok.VocabSize, loaded.VocabSize);
        Assert.Equal(tok.AddedTokens, loaded.AddedTokens);
        Assert.Equal((tok.BosTokenId, tok.EosTokenId, tok.PadTokenId, tok.UnkTokenId, tok.ModelMaxLength),
                     (loaded.BosTokenId, loaded.EosTokenId, loaded.PadTokenId, loaded.UnkTokenId, loaded.ModelMaxLength));
        for (int i = 0; i < 12; i++)
        {
            Assert.True(loaded.TryGetTokenId($"<class_{i}>", out int id));
            Assert.Equal(ids[i], id);
        }
        foreach (var c in GoldenCases())
            Assert.Equal((int[])c[2], loaded.Encode((string)c[1]));
        string prompt = "a photo of a <class_7> bird, <class_11>!";
        Assert.Equal(tok.Encode(prompt), loaded.Encode(prompt));
        Assert.Equal("a photo of a <class_7> bird , <class_11> !", loaded.Decode(loaded.Encode(prompt)));

        // Saved vocabulary and merges equal the originals token for token.
        var original = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(SharedData.TinyA("tokenizer", "vocab.json")))!;
        var saved = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(folder.Path, "vocab.json")))!;
        Assert.Equal(original.OrderBy(kv => kv.Value), saved.OrderBy(kv => kv.Value));
        Assert.Equal(File.ReadAllLines(SharedData.TinyA("tokenizer", "merges.txt")).Where(l => l.Length > 0),
                     File.ReadAllLines(Path.Combine(folder.Path, "merges.txt")).Where(l => l.Length > 0));
    }

    [Fact]
    public void Save_and_load_keeps_an_sd2_pad_token()
    {
        using var a = new TempFolder();
        using var b = new TempFolder();
        var tok = ClipTokenizer.FromFiles(ClipData("vocab.json"), ClipData("merges.txt"), ClipTokenizerOptions.StableDiffusion2);
        Assert.Equal(0, tok.PadTokenId);
        tok.SaveFolder(a.Path);
        var loaded = ClipTokenizer.FromFolder(a.Path);
        Assert.Equal("!", loaded.PadToken);
        Assert.Equal(0, loaded.PadTokenId);
        Assert.Equal(tok.EncodePadded("a cat!"), loaded.EncodePadded("a cat!"));
    }

    [Fact]
    public void Missing_files_name_the_path()
    {
        using var folder = new TempFolder();
        string vocab = Path.Combine(folder.Path, "vocab.json");
        string merges = Path.Combine(folder.Path, "merges.txt");
        var noVocab = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromFolder(folder.Path));
        Assert.Equal(vocab, noVocab.FileName);
        Assert.Contains(vocab, noVocab.Message);

        File.Copy(ClipData("vocab.json"), vocab);
        var noMerges = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromFiles(vocab, merges));
        Assert.Equal(merges, noMerges.FileName);
        Assert.Contains(merges, noMerges.Message);
        Assert.Throws<DirectoryNotFoundException>(() => ClipTokenizer.FromFolder(Path.Combine(folder.Path, "nope")));
    }

    [Fact]
    public void Malformed_json_names_the_file()
    {
        using var folder = new TempFolder();
        CopyVocabAndMerges(folder.Path);
        string config = Path.Combine(folder.Path, "tokenizer_config.json");
        File.WriteAllText(config, "{\"model_max_length\": 77, \"pad_token\": ");
        var bad = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(folder.Path));
        Assert.Contains(config, bad.Message);

        File.Delete(config);
        string map = Path.Combine(folder.Path, "special_tokens_map.json");
        File.WriteAllText(map, "{\"pad_token\": 5}");
        var badToken = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(folder.Path));
        Assert.Contains(map, badToken.Message);

        File.Delete(map);
        string vocab = Path.Combine(folder.Path, "vocab.json");
        File.WriteAllText(vocab, "{\"a\": 0, \"b\": ");
        var badVocab = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(folder.Path));
        Assert.Contains(vocab, badVocab.Message);
    }

    [Fact]
    public void Non_consecutive_added_tokens_are_rejected_naming_the_file()
    {
        using var folder = new TempFolder();
        CopyVocabAndMerges(folder.Path);
        string added = Path.Combine(folder.Path, "added_tokens.json");
        File.WriteAllText(added, """{"<a>": 49408, "<b>": 49410}""");
        var error = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromFolder(folder.Path));
        Assert.Contains(added, error.Message);
        Assert.Contains("<b>", error.Message);

        File.WriteAllText(added, """{"<a>": 49408, "<b>": 49409}""");
        var tok = ClipTokenizer.FromFolder(folder.Path);
        Assert.Equal(["<a>", "<b>"], tok.AddedTokens);
        Assert.Equal([49406, 49409, 49408, 49407], tok.Encode("<b> <a>"));
    }

    [Fact]
    public void Text_clean_up_follows_transformers_without_ftfy()
    {
        var tok = Reference.Value;
        // Tabs, newlines and runs of spaces collapse; control and format characters vanish.
        Assert.Equal(tok.Encode("a photo of a cat"), tok.Encode("\t a\nphoto  of\u00a0a\u200b cat\u0007 "));
        // NFC: a decomposed é encodes like the composed one.
        Assert.Equal(tok.Encode("café"), tok.Encode("cafe\u0301"));
        // Each CJK ideograph is its own word (BasicTokenizer puts spaces around them).
        Assert.Equal(tok.Encode("猫 犬"), tok.Encode("猫犬"));
        // Letters and digits outside the BMP are \p{L} / \p{N} for CLIP's pattern: one digit per word.
        Assert.Equal(tok.Encode("𝟏 𝟐"), tok.Encode("𝟏𝟐"));
        Assert.Equal(tok.Encode("ΟΔΟΣ"), tok.Encode("οδος"));
        Assert.NotEqual(tok.Encode("οδοσ"), tok.Encode("ΟΔΟΣ"));
    }

    static void CopyVocabAndMerges(string folder)
    {
        File.Copy(ClipData("vocab.json"), Path.Combine(folder, "vocab.json"));
        File.Copy(ClipData("merges.txt"), Path.Combine(folder, "merges.txt"));
    }

    sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("diffii-clip-tok-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
