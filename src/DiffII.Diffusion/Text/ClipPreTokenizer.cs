using System.Globalization;
using System.Text;

namespace DiffII.Diffusion.Text;

/// <summary>
/// CLIP's word splitter, the <c>re.findall</c> of
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>
/// (IGNORECASE) written out as a scanner over code points. A .NET <see cref="System.Text.RegularExpressions.Regex"/> sees
/// UTF-16 units, so letters and digits outside the BMP (e.g. 𝐀, 𝟎) would fall into the punctuation class; Python's
/// <c>regex</c> module treats them as \p{L} / \p{N}, and so does this scanner.
/// </summary>
internal static class ClipPreTokenizer
{
    public const string StartOfText = "<|startoftext|>";
    public const string EndOfText = "<|endoftext|>";
    static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    /// <summary>Appends the words of <paramref name="text"/> (already cleaned and lower-cased) to <paramref name="words"/>.</summary>
    public static void Split(string text, List<string> words)
    {
        int i = 0;
        while (i < text.Length)
        {
            // Alternatives are tried in pattern order at each start position, exactly like a regex alternation.
            int matched = MatchLiteral(text, i, StartOfText);
            if (matched == 0) matched = MatchLiteral(text, i, EndOfText);
            if (matched == 0 && text[i] == '\'')
                foreach (string contraction in Contractions)
                    if ((matched = MatchLiteral(text, i, contraction)) > 0) break;
            if (matched == 0)
            {
                Rune rune = RuneAt(text, i);
                var kind = Classify(rune);
                if (kind == CharKind.Space) { i += rune.Utf16SequenceLength; continue; }
                matched = rune.Utf16SequenceLength;
                if (kind != CharKind.Number)
                    while (i + matched < text.Length && Classify(RuneAt(text, i + matched)) == kind)
                        matched += RuneAt(text, i + matched).Utf16SequenceLength;
            }
            words.Add(text.Substring(i, matched));
            i += matched;
        }
    }

    enum CharKind { Letter, Number, Space, Other }

    static CharKind Classify(Rune rune)
    {
        if (Rune.IsWhiteSpace(rune)) return CharKind.Space;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharKind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharKind.Number,
            _ => CharKind.Other,
        };
    }

    static Rune RuneAt(string text, int index)
    {
        // A lone surrogate cannot reach here (the cleaner removes them); fall back to U+FFFD, an "Other" character.
        Rune.DecodeFromUtf16(text.AsSpan(index), out Rune rune, out _);
        return rune;
    }

    static int MatchLiteral(string text, int index, string literal) =>
        string.Compare(text, index, literal, 0, literal.Length, StringComparison.OrdinalIgnoreCase) == 0 && index + literal.Length <= text.Length
            ? literal.Length : 0;
}
