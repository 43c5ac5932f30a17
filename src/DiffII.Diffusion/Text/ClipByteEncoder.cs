namespace DiffII.Diffusion.Text;

/// <summary>
/// CLIP's (and GPT-2's) reversible byte ↔ character table (<c>bytes_to_unicode</c>): printable Latin-1 bytes map to
/// themselves, the remaining 68 bytes (controls, space, soft hyphen, …) to U+0100 onwards, so every UTF-8 byte becomes a
/// visible vocabulary character and no byte is ever unknown to the BPE.
/// </summary>
internal static class ClipByteEncoder
{
    /// <summary>Character that stands for each byte value.</summary>
    public static readonly char[] ByteToChar = BuildTable();

    /// <summary>Byte value of each table character, −1 for characters outside the table (index = char code).</summary>
    static readonly short[] CharToByteTable = BuildReverse(ByteToChar);

    static char[] BuildTable()
    {
        var table = new char[256];
        var direct = new bool[256];
        foreach (var (first, last) in new[] { ('!', '~'), ('¡', '¬'), ('®', 'ÿ') })
            for (int b = first; b <= last; b++) { direct[b] = true; table[b] = (char)b; }
        int shifted = 0;
        for (int b = 0; b < 256; b++)
            if (!direct[b]) table[b] = (char)(256 + shifted++);
        return table;
    }

    static short[] BuildReverse(char[] table)
    {
        var reverse = new short[table.Max() + 1];
        Array.Fill(reverse, (short)-1);
        for (int b = 0; b < table.Length; b++) reverse[table[b]] = (short)b;
        return reverse;
    }

    /// <summary>UTF-8 bytes of <paramref name="text"/>, each replaced by its table character.</summary>
    public static string Encode(string text)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, static (span, source) =>
        {
            for (int i = 0; i < source.Length; i++) span[i] = ByteToChar[source[i]];
        });
    }

    /// <summary>The byte a table character stands for; false for characters outside the table.</summary>
    public static bool TryGetByte(char c, out byte value)
    {
        if (c < CharToByteTable.Length && CharToByteTable[c] >= 0) { value = (byte)CharToByteTable[c]; return true; }
        value = 0;
        return false;
    }
}
