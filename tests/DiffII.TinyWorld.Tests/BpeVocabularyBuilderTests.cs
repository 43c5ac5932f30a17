using System.Text.Json;

namespace DiffII.TinyWorld.Tests;

public class BpeVocabularyBuilderTests
{
    [Fact]
    public void ByteSymbols_AreClipsFirst512Entries_InClipsOrder()
    {
        string clipVocab = SharedData.Path("data", "clip-tokenizer", "vocab.json");
        var clip = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(clipVocab))!;
        var (vocab, _) = BpeVocabularyBuilder.Build(["a"]);
        foreach (var (token, id) in clip.Where(kv => kv.Value < 512))
            Assert.Equal(id, vocab[token]);
    }

    [Fact]
    public void EveryTrainingWord_BecomesOneToken_AndSpecialsComeLast()
    {
        var words = Scene.Vocabulary().ToList();
        var (vocab, merges) = BpeVocabularyBuilder.Build(words);
        Assert.All(words, w => Assert.True(vocab.ContainsKey(w + "</w>"), $"'{w}' is not a single token"));
        Assert.Equal(vocab.Count - 2, vocab["<|startoftext|>"]);
        Assert.Equal(vocab.Count - 1, vocab["<|endoftext|>"]);
        Assert.Equal(vocab.Count, vocab.Values.Distinct().Count());
        Assert.InRange(vocab.Count, 512 + words.Count, 512 + 400);
        // Deterministic: the same words in another order give the same merges.
        var (_, again) = BpeVocabularyBuilder.Build(Enumerable.Reverse(words));
        Assert.Equal(merges, again);
    }

    [Fact]
    public void Write_ProducesClipStyleFiles()
    {
        string dir = Directory.CreateTempSubdirectory("diffii-bpe-").FullName;
        try
        {
            var (vocab, merges) = BpeVocabularyBuilder.Build(Scene.Vocabulary());
            BpeVocabularyBuilder.Write(dir, vocab, merges);
            var lines = File.ReadAllLines(Path.Combine(dir, "merges.txt"));
            Assert.Equal("#version: 0.2", lines[0]);
            Assert.Equal(merges.Count, lines.Length - 1);
            var read = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(dir, "vocab.json")))!;
            Assert.Equal(vocab, read);
        }
        finally { Directory.Delete(dir, true); }
    }
}

public class TinyVocabularyWithClipTokenizerTests
{
    [Fact]
    public void ClipTokenizer_ReadsTheBuiltVocabulary_AndEncodesEachCaptionWordAsOneToken()
    {
        string dir = Directory.CreateTempSubdirectory("diffii-bpe-tok-").FullName;
        try
        {
            var (vocab, merges) = BpeVocabularyBuilder.Build(Scene.Vocabulary());
            BpeVocabularyBuilder.Write(dir, vocab, merges);
            var tokenizer = DiffII.Diffusion.Text.ClipTokenizer.FromFiles(Path.Combine(dir, "vocab.json"), Path.Combine(dir, "merges.txt"));
            Assert.Equal(vocab["<|startoftext|>"], tokenizer.BosTokenId);
            Assert.Equal(vocab["<|endoftext|>"], tokenizer.EosTokenId);
            var scene = SceneDistribution.Everything.Sample(new Random(4));
            var ids = tokenizer.Encode(scene.Caption);
            Assert.Equal(scene.Caption.Split(' ').Length + 2, ids.Count);
            Assert.Equal(scene.Caption, tokenizer.Decode(ids));
            // Words outside the vocabulary still encode (byte-level), just into more pieces.
            Assert.True(tokenizer.Encode("standing on a branch").Count > 6);
            int placeholder = tokenizer.AddToken("<class_0>");
            Assert.Equal(vocab.Count, placeholder);
        }
        finally { Directory.Delete(dir, true); }
    }
}
