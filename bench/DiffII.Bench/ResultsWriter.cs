using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DiffII.Bench;

/// <summary>Writes a report as results.json, results.csv (stages), scaling.csv, memory.csv and summary.md.</summary>
public static class ResultsWriter
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    public static void Write(BenchReport report, string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(report, Json));
        File.WriteAllText(Path.Combine(folder, "results.csv"), StagesCsv(report));
        if (report.Scaling.Count > 0) File.WriteAllText(Path.Combine(folder, "scaling.csv"), ScalingCsv(report));
        if (report.Memory is not null) File.WriteAllText(Path.Combine(folder, "memory.csv"), MemoryCsv(report.Memory));
        File.WriteAllText(Path.Combine(folder, "summary.md"), SummaryMarkdown.Render(report));
    }

    static string N(double? v) => v is double d && double.IsFinite(d) ? d.ToString("R", CultureInfo.InvariantCulture) : "";

    /// <summary>RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.</summary>
    public static string CsvField(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        return text.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + text.Replace("\"", "\"\"") + "\"" : text;
    }

    static string Row(params string?[] fields) => string.Join(",", fields.Select(CsvField));

    public static string StagesCsv(BenchReport report)
    {
        var sb = new StringBuilder();
        sb.AppendLine("model,resolution,stage,batch,repetitions,median_s,min_s,samples_per_s,gflop,gflop_per_s,fraction_of_peak,peak_rss_bytes,rss_increase_bytes,skipped,note");
        foreach (var s in report.Stages)
            sb.AppendLine(Row(s.Model, s.Resolution.ToString(CultureInfo.InvariantCulture), s.Stage, s.Batch.ToString(CultureInfo.InvariantCulture),
                s.Repetitions.ToString(CultureInfo.InvariantCulture), N(s.Skipped is null ? s.MedianSeconds : null), N(s.Skipped is null ? s.MinSeconds : null),
                N(s.Skipped is null ? s.SamplesPerSecond : null), N(s.Gflop), N(s.GflopPerSecond), N(s.FractionOfPeak),
                s.Skipped is null ? s.PeakRssBytes.ToString(CultureInfo.InvariantCulture) : "", s.Skipped is null ? s.RssIncreaseBytes.ToString(CultureInfo.InvariantCulture) : "",
                s.Skipped, s.Note));
        return sb.ToString();
    }

    public static string ScalingCsv(BenchReport report)
    {
        var sb = new StringBuilder();
        sb.AppendLine("axis,classes,shots,expansion,synthetic_images,inversions,learn_s,invert_s,generate_s,total_s,peak_rss_bytes");
        foreach (var p in report.Scaling)
            sb.AppendLine(Row(p.Axis, I(p.Classes), I(p.Shots), I(p.Expansion), I(p.SyntheticImages), I(p.Inversions),
                N(p.LearnSeconds), N(p.InvertSeconds), N(p.GenerateSeconds), N(p.TotalSeconds), p.PeakRssBytes.ToString(CultureInfo.InvariantCulture)));
        return sb.ToString();
    }

    public static string MemoryCsv(MemoryFlatnessResult memory)
    {
        var sb = new StringBuilder();
        sb.AppendLine("images,rss_bytes,live_tensors,seconds");
        foreach (var s in memory.Samples)
            sb.AppendLine(Row(I(s.Images), s.RssBytes.ToString(CultureInfo.InvariantCulture), s.LiveTensors.ToString(CultureInfo.InvariantCulture), N(s.Seconds)));
        return sb.ToString();
    }

    static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
}
