using System.Text;
using System.Text.Json;

namespace DiffII.TinyWorld;

/// <summary>
/// Learns a small byte-level BPE vocabulary in CLIP's file format (<c>vocab.json</c> + <c>merges.txt</c>) from a
/// word list, so the tiny generator's tokenizer goes through exactly the code path of a real CLIP tokenizer while its
/// vocabulary holds a few hundred entries instead of 49,408.
/// </summary>
/// <remarks>
/// Layout, as in CLIP: the 256 byte symbols (in CLIP's byte-to-unicode order), the same with the end-of-word marker
/// <c>&lt;/w&gt;</c>, one entry per merge in merge order, then <c>&lt;|startoftext|&gt;</c> and <c>&lt;|endoftext|&gt;</c>.
/// Merges are learned until every training word is one token; ties are broken by the pair's text so the result
/// depends only on the words.
/// </remarks>
public static class BpeVocabularyBuilder
{
    public const string EndOfWord = "</w>";
    public const string StartOfText = "<|startoftext|>";
    public const string EndOfText = "<|endoftext|>";

    /// <summary>CLIP's reversible byte → printable-character table, in CLIP's order.</summary>
    public static IReadOnlyList<(byte Byte, char Symbol)> ByteSymbols()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1)
            .Concat(Enumerable.Range('¡', '¬' - '¡' + 1))
            .Concat(Enumerable.Range('®', 'ÿ' - '®' + 1))
            .ToList();
        var table = printable.Select(b => ((byte)b, (char)b)).ToList();
        int next = 256;
        for (int b = 0; b < 256; b++)
            if (!printable.Contains(b)) table.Add(((byte)b, (char)next++));
        return table;
    }

    /// <summary>Learns merges from <paramref name="words"/> (each counted once per occurrence) and returns vocab and merges.</summary>
    public static (Dictionary<string, int> Vocab, List<(string Left, string Right)> Merges) Build(IEnumerable<string> words)
    {
        var symbolOf = ByteSymbols().ToDictionary(p => p.Byte, p => p.Symbol);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var w in words)
        {
            string word = w.Trim().ToLowerInvariant();
            if (word.Length == 0) continue;
            counts[word] = counts.GetValueOrDefault(word) + 1;
        }

        // Each word as its list of symbols; the last symbol carries the end-of-word marker.
        var segmented = counts.ToDictionary(kv => kv.Key, kv =>
        {
            var symbols = Encoding.UTF8.GetBytes(kv.Key).Select(b => symbolOf[b].ToString()).ToList();
            symbols[^1] += EndOfWord;
            return symbols;
        });

        var merges = new List<(string, string)>();
        while (true)
        {
            var pairCounts = new Dictionary<(string, string), int>();
            foreach (var (word, symbols) in segmented)
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    var pair = (symbols[i], symbols[i + 1]);
                    pairCounts[pair] = pairCounts.GetValueOrDefault(pair) + counts[word];
                }
            if (pairCounts.Count == 0) break;
            var best = pairCounts
                .OrderByDescending(kv => kv.Value)
                .ThenBy(kv => kv.Key.Item1 + " " + kv.Key.Item2, StringComparer.Ordinal)
                .First().Key;
            merges.Add(best);
            foreach (var symbols in segmented.Values)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    if (symbols[i] == best.Item1 && symbols[i + 1] == best.Item2)
                    {
                        symbols[i] += symbols[i + 1];
                        symbols.RemoveAt(i + 1);
                    }
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (_, symbol) in ByteSymbols()) vocab[symbol.ToString()] = vocab.Count;
        foreach (var (_, symbol) in ByteSymbols()) vocab[symbol + EndOfWord] = vocab.Count;
        foreach (var (left, right) in merges) vocab.TryAdd(left + right, vocab.Count);
        vocab[StartOfText] = vocab.Count;
        vocab[EndOfText] = vocab.Count;
        return (vocab, merges);
    }

    /// <summary>Writes <c>vocab.json</c> and <c>merges.txt</c> (CLIP/Hugging Face format) into <paramref name="folder"/>.</summary>
    public static void Write(string folder, Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges)
    {
        Directory.CreateDirectory(folder);
        var ordered = vocab.OrderBy(kv => kv.Value).ToDictionary(kv => kv.Key, kv => kv.Value);
        File.WriteAllText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(ordered, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        var text = new StringBuilder("#version: 0.2\n");
        foreach (var (left, right) in merges) text.Append(left).Append(' ').Append(right).Append('\n');
        File.WriteAllText(Path.Combine(folder, "merges.txt"), text.ToString());
    }
}
