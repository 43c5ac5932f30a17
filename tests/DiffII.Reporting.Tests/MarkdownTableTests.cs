using System.Globalization;
using DiffII.Reporting;

namespace DiffII.Tests.Reporting;

public class MarkdownTableTests
{
    [Fact]
    public void SmallTable_HasTheExactMarkdown()
    {
        var table = new MarkdownTable(["Method", "ID acc", "Note"], [ColumnAlignment.Left, ColumnAlignment.Right, ColumnAlignment.Default]);
        table.AddRow("Original", MarkdownTable.FormatMeanStd(71.234, 1.1, 1), null)
             .AddRow("Diff-II", MarkdownTable.FormatMeanStd(79.15, 0.55, 1), "a|b");
        Assert.Equal(
            "| Method   |     ID acc | Note |\n" +
            "| :------- | ---------: | ---- |\n" +
            "| Original | 71.2 ± 1.1 |      |\n" +
            "| Diff-II  | 79.2 ± 0.6 | a\\|b |\n",
            table.ToMarkdown());
        Assert.Equal(2, table.RowCount);
    }

    [Fact]
    public void CenteredColumns_AndNumbers_UseInvariantFormatting()
    {
        var previous = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
        try
        {
            var table = new MarkdownTable(["s", "acc"], [ColumnAlignment.Center, ColumnAlignment.Default]);
            table.AddRow(0.5, 0.8125).AddRow(1000, double.NaN);
            Assert.Equal(
                "|  s   | acc    |\n" +
                "| :--: | ------ |\n" +
                "| 0.5  | 0.8125 |\n" +
                "| 1000 | n/a    |\n",
                table.ToMarkdown());
            Assert.Equal("0.85 ± 0.01", MarkdownTable.FormatMeanStd(0.8534, 0.0123, 2));
            Assert.Equal("-1.5", MarkdownTable.FormatNumber(-1.45, 1));
            Assert.Equal("0.00", MarkdownTable.FormatNumber(-0.001, 2));
            Assert.Equal("n/a", MarkdownTable.FormatMeanStd(double.NaN, 0.1, 2));
            Assert.Equal("0.80", MarkdownTable.FormatMeanStd(0.8, double.NaN, 2));
        }
        finally { CultureInfo.CurrentCulture = previous; }
    }

    [Fact]
    public void LineBreaksInCells_BecomeBrTags()
    {
        Assert.Equal("| x      |\n| ------ |\n| a<br>b |\n", new MarkdownTable(["x"]).AddRow("a\nb").ToMarkdown());
    }

    [Fact]
    public void BadInput_IsRejected()
    {
        Assert.Throws<ArgumentException>(() => new MarkdownTable([]));
        Assert.Throws<ArgumentException>(() => new MarkdownTable(["a", "b"], [ColumnAlignment.Left]));
        var e = Assert.Throws<ArgumentException>(() => new MarkdownTable(["a", "b"]).AddRow(1));
        Assert.Contains("1 cells", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => MarkdownTable.FormatMeanStd(1, -1, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => MarkdownTable.FormatNumber(1, -1));
    }
}
