using System.Text;
using DiffII.Reliability.Tests.Rows;

namespace DiffII.Reliability.Tests.Matrix;

/// <summary>Every row of the matrix, and the README table made from them.</summary>
public static class ReliabilityMatrix
{
    public static readonly IReadOnlyList<MatrixRow> Rows =
    [
        .. ImageRows.All, .. DatasetRows.All, .. ModelRows.All, .. FaultRows.All, .. DeterminismRows.All, .. FuzzRows.All,
        .. OptionRows.All, .. FolderRows.All, .. ResourceRows.All,
    ];

    static readonly Lazy<Dictionary<string, MatrixRow>> ById = new(() =>
    {
        var duplicate = Rows.GroupBy(r => r.Id).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new InvalidOperationException($"Matrix row id '{duplicate.Key}' is used {duplicate.Count()} times.");
        return Rows.ToDictionary(r => r.Id);
    });

    public static TheoryData<string> Ids(Area area)
    {
        var data = new TheoryData<string>();
        foreach (var row in Rows.Where(r => r.Area == area)) data.Add(row.Id);
        return data;
    }

    /// <summary>
    /// One intra-op thread: the tiny model gains nothing from more, and CI's two cores are shared with five other test
    /// assemblies, one of which checks a wall-clock limit.
    /// </summary>
    static readonly Lazy<bool> OneTorchThread = new(() =>
    {
        // The CLI's thread policy (run in-process by CLI rows) reads this before it sets libtorch's thread count.
        Environment.SetEnvironmentVariable(DiffII.Diffusion.Runtime.ThreadPolicy.EnvironmentVariable, "1");
        TorchSharp.torch.set_num_threads(1);
        return true;
    });

    public static async Task Run(string id)
    {
        _ = OneTorchThread.Value;
        var row = ById.Value[id];
        using var scratch = new Scratch();
        await row.Check(scratch);
    }

    public const string TableStart = "<!-- what-happens-when:start (generated from tests/DiffII.Reliability.Tests; do not edit by hand) -->";
    public const string TableEnd = "<!-- what-happens-when:end -->";

    static string LayerName(Layer layer) => layer switch { Layer.Library => "library", Layer.MLNet => "ML.NET", _ => "CLI" };

    /// <summary>
    /// The "what happens when" table: one line per input and behaviour, naming the layers whose rows check it, so
    /// the same behaviour through the library, the ML.NET adapter and the CLI reads as one line.
    /// </summary>
    public static string Table()
    {
        var text = new StringBuilder();
        text.AppendLine("| area | when | where | what happens |");
        text.AppendLine("|---|---|---|---|");
        foreach (var group in Rows.GroupBy(r => (r.Area, r.When, r.Then)))
        {
            string layers = string.Join(", ", group.Select(r => r.Layer).Distinct().Order().Select(LayerName));
            text.AppendLine($"| {group.Key.Area.ToString().ToLowerInvariant()} | {Cell(group.Key.When)} | {layers} | {Cell(group.Key.Then)} |");
        }
        return text.ToString();
    }

    static string Cell(string text) => text.Replace("|", "\\|").Replace("\n", " ");
}
