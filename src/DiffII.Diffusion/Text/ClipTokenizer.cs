using System.Text;
using Microsoft.ML.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Text;

/// <summary>
/// The CLIP BPE tokenizer of Stable Diffusion, giving the ids Hugging Face transformers' <c>CLIPTokenizer</c> gives in
/// a diffusers pipeline (<c>tokenizer(prompt, padding="max_length", max_length=77, truncation=True)</c>).
/// </summary>
/// <remarks>
/// <para>Per prompt: (1) added tokens — the special tokens (bos/eos/unk/pad) and tokens added for textual inversion — are
/// cut out of the raw text first, case-sensitively, before any clean-up or lower-casing (transformers' added-token trie;
/// <c>CLIPTokenizer</c> has no <c>do_lower_case</c> attribute, so transformers ≥ 4.0 does not lower-case around them);
/// (2) every piece between them is cleaned and lower-cased (<see cref="ClipTextCleaner"/>), split into words with CLIP's
/// pattern (<see cref="ClipPreTokenizer"/>), each word's UTF-8 bytes mapped to CLIP's byte alphabet
/// (<see cref="ClipByteEncoder"/>), and BPE-merged with a <c>&lt;/w&gt;</c> end-of-word suffix by a
/// Microsoft.ML.Tokenizers <see cref="BpeTokenizer"/>.</para>
/// <para>Because special tokens are split out like transformers does, a Stable Diffusion 2.x tokenizer (pad token
/// <c>!</c>) encodes a literal "!" as id 0, not as <c>!&lt;/w&gt;</c> (256) — the same as transformers.</para>
/// <para>Not reproduced: the <c>ftfy</c> branch of <c>CLIPTokenizer</c> (used only when ftfy is installed; it also
/// un-escapes HTML and straightens curly quotes) and the <c>single_word</c> flag of added tokens (lstrip/rstrip need
/// nothing: the clean-up collapses whitespace anyway).</para>
/// <para>Encoding may run on several threads at once; adding tokens must not overlap with anything else.</para>
/// </remarks>
public sealed partial class ClipTokenizer
{
    /// <summary><c>CLIPTokenizer</c> reads only the first 49152 − 256 − 2 merges of merges.txt.</summary>
    public const int MaxMerges = 49152 - 256 - 2;

    const string EndOfWordSuffix = "</w>";

    readonly string[] _baseTokens;
    readonly Dictionary<string, int> _vocab;
    readonly List<(string Left, string Right)> _merges;
    readonly BpeTokenizer _bpe;

    // Added tokens: the special tokens plus any added for textual inversion. All are matched in raw text before BPE.
    readonly AddedTokenTrie _trie = new();
    readonly Dictionary<string, int> _addedTokenIds = new(StringComparer.Ordinal);
    readonly Dictionary<int, string> _addedTokensById = [];
    readonly HashSet<int> _specialIds = [];
    readonly List<string> _appendedTokens = [];

    ClipTokenizer(string vocabPath, string mergesPath, ClipTokenizerOptions options,
                  IEnumerable<(int Id, string Content, bool Special, string Source)> savedAddedTokens)
    {
        if (options.ModelMaxLength < 2)
            throw new ArgumentException($"model_max_length must be at least 2 (BOS + EOS), got {options.ModelMaxLength}.", nameof(options));
        (_vocab, _baseTokens) = ReadVocab(vocabPath);
        _merges = ReadMerges(mergesPath);

        var bpeOptions = new BpeOptions(_vocab)
        {
            Merges = _merges.Select(m => m.Left + " " + m.Right),
            EndOfWordSuffix = EndOfWordSuffix,
            UnknownToken = _vocab.ContainsKey(options.UnkToken) ? options.UnkToken : null,
        };
        try
        {
            _bpe = BpeTokenizer.Create(bpeOptions);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw new InvalidDataException($"CLIP merges '{mergesPath}' do not fit vocabulary '{vocabPath}': {e.Message}", e);
        }

        foreach (var (id, content, special, source) in savedAddedTokens.OrderBy(t => t.Id))
        {
            if (id >= _baseTokens.Length && id != VocabSize)
                throw new InvalidDataException($"{source}: added token '{content}' has id {id}, but added tokens must be numbered consecutively from the vocabulary size {_baseTokens.Length}; the next id would be {VocabSize}.");
            if (_addedTokenIds.TryGetValue(content, out int other))
                throw new InvalidDataException($"{source}: added token '{content}' appears with two ids, {other} and {id}.");
            Register(content, id, special);
        }

        BosToken = options.BosToken;
        EosToken = options.EosToken;
        UnkToken = options.UnkToken;
        PadToken = options.PadToken;
        ModelMaxLength = options.ModelMaxLength;
        // transformers adds its special tokens in this order; one missing from the vocabulary gets the next free id.
        BosTokenId = RegisterSpecial(BosToken);
        EosTokenId = RegisterSpecial(EosToken);
        UnkTokenId = RegisterSpecial(UnkToken);
        PadTokenId = RegisterSpecial(PadToken);
    }

    /// <summary>Number of ids, added tokens included (transformers' <c>len(tokenizer)</c>): the text encoder's
    /// token-embedding rows, and the id the next <see cref="AddToken"/> gets.</summary>
    public int VocabSize => _baseTokens.Length + _appendedTokens.Count;

    /// <summary>Size of vocab.json (transformers' <c>tokenizer.vocab_size</c>).</summary>
    public int BaseVocabSize => _baseTokens.Length;

    public int ModelMaxLength { get; }
    public string BosToken { get; }
    public string EosToken { get; }
    public string UnkToken { get; }
    public string PadToken { get; }
    public int BosTokenId { get; }
    public int EosTokenId { get; }
    public int UnkTokenId { get; }
    public int PadTokenId { get; }

    /// <summary>Tokens added beyond vocab.json, in id order (the first has id <see cref="BaseVocabSize"/>).</summary>
    public IReadOnlyList<string> AddedTokens => _appendedTokens;

    /// <summary>Ids of the prompt: BOS, the tokens (truncated so the whole fits <see cref="ModelMaxLength"/>), EOS. No padding.</summary>
    public IReadOnlyList<int> Encode(string text) => Encode(text, addSpecialTokens: true, truncate: true);

    /// <summary>Ids of <paramref name="text"/>, optionally without BOS/EOS (like <c>add_special_tokens=False</c>) or untruncated.</summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens, bool truncate = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<int>();
        EncodeInto(text, tokens);
        int budget = ModelMaxLength - (addSpecialTokens ? 2 : 0);
        if (truncate && tokens.Count > budget) tokens.RemoveRange(budget, tokens.Count - budget);
        if (!addSpecialTokens) return tokens;
        var ids = new List<int>(tokens.Count + 2) { BosTokenId };
        ids.AddRange(tokens);
        ids.Add(EosTokenId);
        return ids;
    }

    /// <summary><see cref="Encode(string)"/> padded with <see cref="PadTokenId"/> to exactly <see cref="ModelMaxLength"/> ids.</summary>
    public long[] EncodePadded(string text)
    {
        var padded = new long[ModelMaxLength];
        FillPadded(text, padded);
        return padded;
    }

    /// <summary>Padded ids of every prompt as an int64 tensor [prompts, <see cref="ModelMaxLength"/>] (the text encoder's <c>input_ids</c>).</summary>
    public Tensor EncodeBatch(IEnumerable<string> prompts, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var list = prompts as IReadOnlyList<string> ?? prompts.ToList();
        var data = new long[list.Count * ModelMaxLength];
        for (int i = 0; i < list.Count; i++)
            FillPadded(list[i] ?? throw new ArgumentException($"Prompt {i} is null.", nameof(prompts)), data.AsSpan(i * ModelMaxLength, ModelMaxLength));
        return torch.tensor(data, [list.Count, ModelMaxLength], ScalarType.Int64, device);
    }

    /// <summary>Token strings of <paramref name="text"/> without BOS/EOS and untruncated (transformers' <c>tokenize</c>).</summary>
    public IReadOnlyList<string> Tokenize(string text) =>
        Encode(text, addSpecialTokens: false, truncate: false).Select(IdToToken).ToList();

    /// <summary>Text of <paramref name="ids"/> as transformers' <c>decode</c> gives it: vocabulary pieces are turned back into
    /// UTF-8 with each <c>&lt;/w&gt;</c> becoming a space, added tokens are kept verbatim and separated by spaces.
    /// Unlike transformers, special tokens (BOS/EOS/pad/unk) are skipped unless asked for.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var parts = new List<string>();
        var pending = new StringBuilder();
        foreach (int id in ids)
        {
            bool special = _specialIds.Contains(id);
            if (special && skipSpecialTokens) continue;
            if (!special && _addedTokensById.TryGetValue(id, out string? added))
            {
                FlushPieces(pending, parts);
                parts.Add(added);
                continue;
            }
            pending.Append(IdToToken(id));
        }
        FlushPieces(pending, parts);
        string text = string.Join(' ', parts);
        return cleanUpTokenizationSpaces ? CleanUpTokenizationSpaces(text) : text;
    }

    /// <summary>The token string of an id (vocabulary entry or added token).</summary>
    public string IdToToken(int id)
    {
        if (_addedTokensById.TryGetValue(id, out string? added)) return added;
        if ((uint)id < (uint)_baseTokens.Length) return _baseTokens[id];
        throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is outside the vocabulary (0..{VocabSize - 1}).");
    }

    /// <summary>Id of a whole token string: an added token, or a vocabulary entry such as "cat&lt;/w&gt;".</summary>
    public bool TryGetTokenId(string token, out int id) =>
        _addedTokenIds.TryGetValue(token, out id) || _vocab.TryGetValue(token, out id);

    /// <summary>
    /// Adds a token (e.g. a textual-inversion placeholder such as <c>&lt;class_3&gt;</c>) with the next id,
    /// <see cref="VocabSize"/>. From then on it is cut out of prompts verbatim (case-sensitive) before BPE.
    /// A token already in the vocabulary is an error, as in diffusers' textual inversion.
    /// </summary>
    public int AddToken(string token) => AddTokens([token])[0];

    /// <summary>Adds several tokens (all or none) with consecutive ids; see <see cref="AddToken"/>.</summary>
    public IReadOnlyList<int> AddTokens(IEnumerable<string> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var list = tokens.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string token in list)
        {
            if (string.IsNullOrEmpty(token)) throw new ArgumentException("An added token must be a non-empty string.", nameof(tokens));
            if (TryGetTokenId(token, out int existing))
                throw new ArgumentException($"The token '{token}' is already in the vocabulary (id {existing}); choose another placeholder.", nameof(tokens));
            if (!seen.Add(token)) throw new ArgumentException($"The token '{token}' is listed twice.", nameof(tokens));
        }
        var ids = new List<int>(list.Count);
        foreach (string token in list)
        {
            ids.Add(VocabSize);
            Register(token, VocabSize, special: false);
        }
        return ids;
    }

    void FillPadded(string text, Span<long> destination)
    {
        var ids = Encode(text);
        for (int i = 0; i < ids.Count; i++) destination[i] = ids[i];
        destination[ids.Count..].Fill(PadTokenId);
    }

    void EncodeInto(string text, List<int> ids)
    {
        var words = new List<string>();
        foreach (var (piece, token) in _trie.Split(text))
        {
            if (token is not null) { ids.Add(_addedTokenIds[token]); continue; }
            string cleaned = ClipTextCleaner.Clean(piece);
            if (cleaned.Length == 0) continue;
            words.Clear();
            ClipPreTokenizer.Split(cleaned, words);
            foreach (string word in words)
            {
                // CLIPTokenizer's BPE cache returns these two literals whole.
                if (word.Equals(ClipPreTokenizer.StartOfText, StringComparison.OrdinalIgnoreCase) || word.Equals(ClipPreTokenizer.EndOfText, StringComparison.OrdinalIgnoreCase))
                {
                    string literal = word.ToLowerInvariant();
                    ids.Add(TryGetTokenId(literal, out int id) ? id : UnkTokenId);
                    continue;
                }
                ids.AddRange(_bpe.EncodeToIds(ClipByteEncoder.Encode(word), considerPreTokenization: false, considerNormalization: false));
            }
        }
    }

    void Register(string content, int id, bool special)
    {
        _addedTokenIds[content] = id;
        _addedTokensById[id] = content;
        if (special) _specialIds.Add(id);
        if (id >= _baseTokens.Length) _appendedTokens.Add(content);
        _trie.Add(content);
    }

    int RegisterSpecial(string content)
    {
        if (string.IsNullOrEmpty(content)) throw new ArgumentException("Special tokens must be non-empty strings.");
        if (!_addedTokenIds.TryGetValue(content, out int id))
        {
            id = _vocab.TryGetValue(content, out int vocabId) ? vocabId : VocabSize;
            Register(content, id, special: true);
        }
        _specialIds.Add(id);
        return id;
    }

    static void FlushPieces(StringBuilder pending, List<string> parts)
    {
        if (pending.Length == 0) return;
        var bytes = new List<byte>(pending.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < pending.Length; i++)
        {
            if (ClipByteEncoder.TryGetByte(pending[i], out byte b)) { bytes.Add(b); continue; }
            // Only a special token spelled outside the byte alphabet gets here; keep it as its own UTF-8.
            int n = Encoding.UTF8.GetBytes(pending.ToString(i, 1).AsSpan(), utf8);
            for (int k = 0; k < n; k++) bytes.Add(utf8[k]);
        }
        pending.Clear();
        string text = Encoding.UTF8.GetString(bytes.ToArray()).Replace(EndOfWordSuffix, " ").Trim();
        if (text.Length > 0) parts.Add(text);
    }

    static string CleanUpTokenizationSpaces(string text) =>
        text.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
            .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

}
