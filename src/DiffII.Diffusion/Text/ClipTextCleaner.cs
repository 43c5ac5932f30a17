using System.Buffers;
using System.Globalization;
using System.Text;

namespace DiffII.Diffusion.Text;

/// <summary>
/// Text clean-up applied by Hugging Face <c>CLIPTokenizer._tokenize</c> before its regex, in the configuration
/// transformers uses when <c>ftfy</c> is not installed (the default install of transformers/diffusers):
/// <c>" ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text))</c>. In order: drop NUL, U+FFFD
/// and every other "C*" code point except \t \n \r; turn \t \n \r and "Zs" spaces into a space; put spaces around CJK
/// ideographs; NFC; split on Python whitespace; lower-case (Python <c>str.lower</c>); join with single spaces.
/// For NFC text without control characters or CJK ideographs this equals openai's
/// <c>whitespace_clean(basic_clean(text)).lower()</c> with ftfy as identity.
/// </summary>
internal static class ClipTextCleaner
{
    public static string Clean(string text)
    {
        var cleaned = new StringBuilder(text.Length + 8);
        for (int i = 0; i < text.Length;)
        {
            // A lone surrogate is category Cs, which BasicTokenizer drops like any other control character.
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out Rune rune, out int consumed) != OperationStatus.Done)
            {
                i += Math.Max(consumed, 1);
                continue;
            }
            i += consumed;
            int cp = rune.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(rune)) continue;
            if (IsBertWhitespace(rune)) { cleaned.Append(' '); continue; }
            if (IsCjkIdeograph(cp)) cleaned.Append(' ').Append(text, i - consumed, consumed).Append(' ');
            else cleaned.Append(text, i - consumed, consumed);
        }

        string nfc = cleaned.ToString().Normalize(NormalizationForm.FormC);
        var words = new List<string>();
        int start = -1;
        for (int i = 0; i <= nfc.Length; i++)
        {
            bool boundary = i == nfc.Length || IsPythonSpace(nfc[i]);
            if (boundary && start >= 0) { words.Add(nfc[start..i]); start = -1; }
            else if (!boundary && start < 0) start = i;
        }
        return PythonLower(string.Join(' ', words));
    }

    /// <summary>BasicTokenizer's <c>_is_control</c>: every "C*" category except tab, newline and carriage return.</summary>
    static bool IsControl(Rune rune)
    {
        if (rune.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    /// <summary>BasicTokenizer's <c>_is_whitespace</c>: space, \t, \n, \r or category Zs.</summary>
    static bool IsBertWhitespace(Rune rune) =>
        rune.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(rune) == UnicodeCategory.SpaceSeparator;

    /// <summary>BasicTokenizer's <c>_is_chinese_char</c> (CJK Unified Ideographs blocks only, not kana or hangul).</summary>
    static bool IsCjkIdeograph(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;

    /// <summary>Characters Python's <c>str.split()</c> splits on (all BMP).</summary>
    static bool IsPythonSpace(char c) =>
        c is ' ' or >= '\t' and <= '\r' or >= '\x1c' and <= '\x1f' or '\x85' or '\xa0' or '\u1680' or >= '\u2000' and <= '\u200a'
            or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000';

    /// <summary>
    /// Python's <c>str.lower()</c>: the invariant simple mapping plus the two places where Python differs from it —
    /// U+0130 (İ) becomes "i̇" (two code points), and Σ becomes final ς at the end of a word (Unicode Final_Sigma).
    /// </summary>
    internal static string PythonLower(string text)
    {
        var lower = new StringBuilder(text.Length);
        Span<char> utf16 = stackalloc char[2];
        for (int i = 0; i < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i), out Rune rune, out int consumed);
            if (rune.Value == 0x130) lower.Append("i\u0307");
            else if (rune.Value == 0x3A3) lower.Append(IsFinalSigma(text, i, consumed) ? 'ς' : 'σ');
            else
            {
                lower.Append(utf16[..Rune.ToLowerInvariant(rune).EncodeToUtf16(utf16)]);
            }
            i += consumed;
        }
        return lower.ToString();
    }

    // CPython's handle_capital_sigma: cased, case-ignorable*, Σ, and not (case-ignorable*, cased) after it.
    static bool IsFinalSigma(string text, int index, int length)
    {
        int j = index;
        Rune before = default;
        bool found = false;
        while (j > 0)
        {
            Rune.DecodeLastFromUtf16(text.AsSpan(0, j), out Rune r, out int n);
            j -= n;
            if (!IsCaseIgnorable(r)) { before = r; found = true; break; }
        }
        if (!found || !IsCased(before)) return false;
        for (int k = index + length; k < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(k), out Rune r, out int n);
            k += n;
            if (!IsCaseIgnorable(r)) return !IsCased(r);
        }
        return true;
    }

    // Unicode "Cased": Lu, Ll, Lt plus the Other_Lowercase / Other_Uppercase code points (modifier letters, circled letters, …).
    static bool IsCased(Rune r)
    {
        var category = Rune.GetUnicodeCategory(r);
        if (category is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter) return true;
        int cp = r.Value;
        return cp is 0xAA or 0xBA or >= 0x2B0 and <= 0x2B8 or 0x2C0 or 0x2C1 or >= 0x2E0 and <= 0x2E4 or 0x345 or 0x37A
            or >= 0x1D2C and <= 0x1D6A or 0x1D78 or >= 0x1D9B and <= 0x1DBF or 0x2071 or 0x207F or >= 0x2090 and <= 0x209C
            or >= 0x2160 and <= 0x217F or >= 0x24B6 and <= 0x24E9 or 0x2C7C or 0x2C7D or 0xA69C or 0xA69D or 0xA770
            or 0xA7F8 or 0xA7F9 or >= 0xAB5C and <= 0xAB5F;
    }

    // Unicode "Case_Ignorable": Mn, Me, Cf, Lm, Sk and the word-break MidLetter / MidNumLet / Single_Quote characters.
    static bool IsCaseIgnorable(Rune r)
    {
        var category = Rune.GetUnicodeCategory(r);
        if (category is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol) return true;
        return r.Value is '\'' or '.' or ':' or 0xB7 or 0x387 or 0x55F or 0x5F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027
            or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A;
    }
}
