using System.Globalization;
using System.Text;

namespace DiffII.Reporting;

/// <summary>Alignment of a markdown table column (the colons in the separator row).</summary>
public enum ColumnAlignment { Default, Left, Center, Right }

/// <summary>
/// Builds a GitHub-flavoured markdown table. Cells are padded so the source reads as a table too; numbers are
/// formatted with the invariant culture; '|' is escaped and line breaks become &lt;br&gt;.
/// </summary>
public sealed class MarkdownTable
{
    readonly string[] headers;
    readonly ColumnAlignment[] alignments;
    readonly List<string[]> rows = [];

    /// <exception cref="ArgumentException">No headers, or a different number of alignments.</exception>
    public MarkdownTable(IReadOnlyList<string> headers, IReadOnlyList<ColumnAlignment>? alignments = null)
    {
        ArgumentNullException.ThrowIfNull(headers);
        if (headers.Count == 0) throw new ArgumentException("A markdown table needs at least one column.", nameof(headers));
        if (alignments is not null && alignments.Count != headers.Count)
            throw new ArgumentException($"The table has {headers.Count} columns but {alignments.Count} alignments.", nameof(alignments));
        this.headers = [.. headers.Select(h => Escape(h ?? throw new ArgumentException("A header is null.", nameof(headers))))];
        this.alignments = alignments is null ? new ColumnAlignment[headers.Count] : [.. alignments];
        foreach (var a in this.alignments)
            if (!Enum.IsDefined(a)) throw new ArgumentException($"Unknown column alignment {(int)a}.", nameof(alignments));
    }

    public int ColumnCount => headers.Length;
    public int RowCount => rows.Count;

    /// <summary>Adds a row; each cell is formatted with <see cref="FormatCell"/>.</summary>
    /// <exception cref="ArgumentException">The row does not have one cell per column.</exception>
    public MarkdownTable AddRow(params object?[] cells)
    {
        ArgumentNullException.ThrowIfNull(cells);
        if (cells.Length != headers.Length)
            throw new ArgumentException($"Row {rows.Count + 1} has {cells.Length} cells; the table has {headers.Length} columns ({string.Join(", ", headers)}).", nameof(cells));
        rows.Add([.. cells.Select(c => Escape(FormatCell(c)))]);
        return this;
    }

    /// <summary>The table, one line per row, each ending with '\n'.</summary>
    public string ToMarkdown()
    {
        var widths = new int[headers.Length];
        for (int c = 0; c < headers.Length; c++)
        {
            widths[c] = Math.Max(3, headers[c].Length);
            foreach (var row in rows) widths[c] = Math.Max(widths[c], row[c].Length);
        }
        var sb = new StringBuilder();
        AppendRow(sb, headers, widths);
        sb.Append('|');
        for (int c = 0; c < headers.Length; c++)
        {
            int w = widths[c];
            sb.Append(' ').Append(alignments[c] switch
            {
                ColumnAlignment.Left => ":" + new string('-', w - 1),
                ColumnAlignment.Right => new string('-', w - 1) + ":",
                ColumnAlignment.Center => ":" + new string('-', w - 2) + ":",
                _ => new string('-', w),
            }).Append(" |");
        }
        sb.Append('\n');
        foreach (var row in rows) AppendRow(sb, row, widths);
        return sb.ToString();
    }

    public override string ToString() => ToMarkdown();

    void AppendRow(StringBuilder sb, string[] cells, int[] widths)
    {
        sb.Append('|');
        for (int c = 0; c < cells.Length; c++)
        {
            int extra = widths[c] - cells[c].Length;
            string padded = alignments[c] switch
            {
                ColumnAlignment.Right => new string(' ', extra) + cells[c],
                ColumnAlignment.Center => new string(' ', extra / 2) + cells[c] + new string(' ', extra - extra / 2),
                _ => cells[c] + new string(' ', extra),
            };
            sb.Append(' ').Append(padded).Append(" |");
        }
        sb.Append('\n');
    }

    /// <summary>
    /// Text of a cell: null is empty, NaN is "n/a", floating-point numbers use the shortest round-trip form, and
    /// other formattable values their invariant-culture form.
    /// </summary>
    public static string FormatCell(object? value) => value switch
    {
        null => "",
        string s => s,
        double d => double.IsNaN(d) ? "n/a" : d.ToString("R", CultureInfo.InvariantCulture),
        float f => float.IsNaN(f) ? "n/a" : f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>A number with a fixed number of decimals, invariant culture; NaN is "n/a".</summary>
    public static string FormatNumber(double value, int decimals)
    {
        CheckDecimals(decimals);
        if (double.IsNaN(value)) return "n/a";
        // + 0.0 so a value that rounds to zero is "0.00", not "-0.00".
        return (Math.Round(value, decimals, MidpointRounding.AwayFromZero) + 0.0).ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    /// <summary>"mean ± std" with <paramref name="decimals"/> decimals each; a NaN mean is "n/a", a NaN std leaves just the mean.</summary>
    public static string FormatMeanStd(double mean, double std, int decimals)
    {
        CheckDecimals(decimals);
        if (double.IsNaN(mean)) return "n/a";
        if (double.IsNaN(std)) return FormatNumber(mean, decimals);
        if (std < 0) throw new ArgumentOutOfRangeException(nameof(std), std, "A standard deviation cannot be negative.");
        return FormatNumber(mean, decimals) + " ± " + FormatNumber(std, decimals);
    }

    static void CheckDecimals(int decimals)
    {
        if (decimals is < 0 or > 15) throw new ArgumentOutOfRangeException(nameof(decimals), decimals, "Use 0–15 decimals.");
    }

    static string Escape(string cell) => cell.Replace("|", "\\|").Replace("\r\n", "<br>").Replace("\n", "<br>").Replace("\r", "<br>");
}
