using System.Text.Json;
using DiffII.Storage;

namespace DiffII.Cli;

/// <summary>
/// The settings of a run, saved in its work folder (<c>diffii-settings.json</c>) so that chained commands
/// (learn, then invert, then generate) agree without repeating every option: a value given on the command line wins,
/// else the saved one, else the default.
/// </summary>
public sealed record RunSettings
{
    public const string FileName = "diffii-settings.json";

    public string? Images { get; init; }
    public string? Csv { get; init; }
    public string? Model { get; init; }
    public string? Tokenizer { get; init; }
    public string? Metaclass { get; init; }
    public string? Strategy { get; init; }
    public long? Seed { get; init; }
    public int? LearnSteps { get; init; }
    public int? LoraRank { get; init; }
    public int? Batch { get; init; }
    public int? InversionSteps { get; init; }
    public double? Expansion { get; init; }
    public int? TargetCount { get; init; }
    public double? Split { get; init; }
    public int? SampleSteps { get; init; }
    public double? Guidance { get; init; }
    public List<string>? Suffixes { get; init; }
    public string? SuffixSource { get; init; }
    public string? ImagesFingerprint { get; init; }

    /// <summary>These values where set, else <paramref name="saved"/>'s. An image source given now replaces the saved one of either kind.</summary>
    public RunSettings Over(RunSettings saved)
    {
        bool newSource = Images is not null || Csv is not null;
        return new RunSettings
        {
            Images = newSource ? Images : saved.Images,
            Csv = newSource ? Csv : saved.Csv,
            Model = Model ?? saved.Model,
            Tokenizer = Tokenizer ?? saved.Tokenizer,
            Metaclass = Metaclass ?? saved.Metaclass,
            Strategy = Strategy ?? saved.Strategy,
            Seed = Seed ?? saved.Seed,
            LearnSteps = LearnSteps ?? saved.LearnSteps,
            LoraRank = LoraRank ?? saved.LoraRank,
            Batch = Batch ?? saved.Batch,
            InversionSteps = InversionSteps ?? saved.InversionSteps,
            // The budget is one choice: an expansion given now drops a saved target count, and the other way round.
            Expansion = Expansion ?? (TargetCount is null ? saved.Expansion : null),
            TargetCount = TargetCount ?? (Expansion is null ? saved.TargetCount : null),
            Split = Split ?? saved.Split,
            SampleSteps = SampleSteps ?? saved.SampleSteps,
            Guidance = Guidance ?? saved.Guidance,
            Suffixes = Suffixes ?? saved.Suffixes,
            SuffixSource = Suffixes is not null ? SuffixSource : saved.SuffixSource,
            ImagesFingerprint = ImagesFingerprint ?? saved.ImagesFingerprint,
        };
    }

    public static RunSettings Load(string workFolder)
    {
        string path = Path.Combine(workFolder, FileName);
        if (!File.Exists(path)) return new RunSettings();
        try { return JsonSerializer.Deserialize<RunSettings>(File.ReadAllText(path), CliOutput.JsonOptions) ?? new RunSettings(); }
        catch (JsonException e) { throw new CliException($"{path} is damaged ({e.Message}); delete it and pass every option again."); }
    }

    public void Save(string workFolder)
    {
        Directory.CreateDirectory(workFolder);
        AtomicFile.WriteAllText(Path.Combine(workFolder, FileName), JsonSerializer.Serialize(this, CliOutput.JsonOptions));
    }
}
