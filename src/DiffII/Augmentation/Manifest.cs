using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DiffII.Augmentation;

/// <summary>One synthetic image's provenance: one line of <c>manifest.jsonl</c>.</summary>
public sealed record ManifestEntry
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    /// <summary>The PNG, relative to the work folder.</summary>
    [JsonPropertyName("file")] public required string File { get; init; }
    [JsonPropertyName("class")] public required string ClassName { get; init; }
    [JsonPropertyName("class_index")] public required int ClassIndex { get; init; }
    [JsonPropertyName("labels")] public required IReadOnlyList<ManifestLabel> Labels { get; init; }
    [JsonPropertyName("strategy")] public required string Strategy { get; init; }
    [JsonPropertyName("sources")] public required IReadOnlyList<string> Sources { get; init; }
    [JsonPropertyName("phi")] public double? Phi { get; init; }
    [JsonPropertyName("suffix")] public string? Suffix { get; init; }
    [JsonPropertyName("split_ratio")] public double SplitRatio { get; init; }
    [JsonPropertyName("strength")] public double? Strength { get; init; }
    [JsonPropertyName("prompt")] public required string Prompt { get; init; }
    [JsonPropertyName("suffix_prompt")] public string? SuffixPrompt { get; init; }
    [JsonPropertyName("seed")] public required long Seed { get; init; }
    [JsonPropertyName("steps")] public int Steps { get; init; }
    [JsonPropertyName("guidance")] public double Guidance { get; init; }

    /// <summary>The entry of a planned sample once its PNG is written: where it is, its labels, and how it was made.</summary>
    /// <param name="prompt">The sample's prompt without and with its suffix.</param>
    public static ManifestEntry For(PlannedSample p, IReadOnlyList<ClassImages> classes, Func<PlannedSample, string?, string> prompt, GenerationOptions generation) => new()
    {
        Id = p.Id,
        File = Storage.WorkFolder.SyntheticFile(p.ClassIndex, classes[p.ClassIndex].Name, p.Id),
        ClassName = classes[p.ClassIndex].Name,
        ClassIndex = p.ClassIndex,
        Labels = p.Labels.Select(l => new ManifestLabel(classes[l.ClassIndex].Name, l.Weight)).ToList(),
        Strategy = p.Strategy.Name(),
        Sources = [.. p.Sources],
        Phi = p.Phi,
        Suffix = p.Suffix,
        SplitRatio = p.SplitRatio,
        Strength = p.Strength,
        Prompt = prompt(p, null),
        SuffixPrompt = p.Suffix is null ? null : prompt(p, p.Suffix),
        Seed = p.Seed,
        Steps = generation.Steps,
        Guidance = generation.GuidanceScale,
    };
}

public sealed record ManifestLabel([property: JsonPropertyName("class")] string ClassName, [property: JsonPropertyName("weight")] float Weight);

/// <summary>
/// The append-only list of finished synthetic images. An entry is appended only after its PNG was written
/// atomically, so an entry always means a complete image. Lines carry no timestamps: the same seed gives a
/// byte-identical manifest, whether the run was interrupted or not.
/// </summary>
public sealed class Manifest
{
    static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
    readonly string _path;
    readonly Dictionary<string, ManifestEntry> _entries = new(StringComparer.Ordinal);
    readonly List<ManifestEntry> _ordered = [];

    Manifest(string path) { _path = path; }

    public string Path => _path;
    public IReadOnlyList<ManifestEntry> Entries => _ordered;
    public bool Contains(string id) => _entries.ContainsKey(id);
    public int Count => _ordered.Count;

    /// <summary>
    /// Reads the manifest (creating it when absent). A last line cut short by a killed process is removed; any other
    /// unreadable line is an error naming the file and line number.
    /// </summary>
    public static Manifest Open(string path)
    {
        var manifest = new Manifest(path);
        if (!System.IO.File.Exists(path)) return manifest;
        byte[] bytes = System.IO.File.ReadAllBytes(path);
        int lastNewline = Array.LastIndexOf(bytes, (byte)'\n');
        if (lastNewline < bytes.Length - 1)
        {
            // The tail after the last newline was being written when the process died: drop it.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
            stream.SetLength(lastNewline + 1);
            bytes = bytes[..(lastNewline + 1)];
        }
        var lines = Encoding.UTF8.GetString(bytes).Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            ManifestEntry? entry;
            try { entry = JsonSerializer.Deserialize<ManifestEntry>(lines[i], Json); }
            catch (JsonException e) { throw new InvalidDataException($"{path}, line {i + 1}: not a manifest entry ({e.Message}).", e); }
            if (entry is null) throw new InvalidDataException($"{path}, line {i + 1}: empty entry.");
            if (manifest._entries.TryAdd(entry.Id, entry)) manifest._ordered.Add(entry);
        }
        return manifest;
    }

    /// <summary>
    /// Removes the entries whose PNG (relative to <paramref name="workFolder"/>) is missing or empty, rewriting the
    /// manifest atomically, so a resumed run makes those images again. Returns the ids dropped.
    /// </summary>
    public IReadOnlyList<string> DropEntriesWithoutFiles(string workFolder)
    {
        var missing = _ordered.Where(e =>
        {
            var file = new FileInfo(System.IO.Path.Combine(workFolder, e.File));
            return !file.Exists || file.Length == 0;
        }).ToList();
        if (missing.Count == 0) return [];
        foreach (var entry in missing)
        {
            _entries.Remove(entry.Id);
            _ordered.Remove(entry);
        }
        Storage.AtomicFile.WriteAllText(_path, string.Concat(_ordered.Select(e => JsonSerializer.Serialize(e, Json) + "\n")));
        return missing.Select(e => e.Id).ToList();
    }

    /// <summary>Appends one entry and flushes it to disk.</summary>
    public void Append(ManifestEntry entry)
    {
        if (_entries.ContainsKey(entry.Id)) throw new InvalidOperationException($"The manifest already has an entry '{entry.Id}'.");
        string line = JsonSerializer.Serialize(entry, Json) + "\n";
        using (var stream = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read))
        {
            Storage.WriteFaults.Check(_path);
            stream.Write(Encoding.UTF8.GetBytes(line));
            stream.Flush(flushToDisk: true);
        }
        _entries[entry.Id] = entry;
        _ordered.Add(entry);
    }
}
