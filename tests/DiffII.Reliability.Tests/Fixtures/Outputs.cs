namespace DiffII.Reliability.Tests.Fixtures;

/// <summary>Comparisons of what two runs left in their work folders.</summary>
public static class Outputs
{
    /// <summary>The files that are a run's results: manifest, synthetic PNGs, learned concepts and inversion pools (relative path → bytes).</summary>
    public static SortedDictionary<string, byte[]> Results(string work)
    {
        var files = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(work, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(work, file).Replace('\\', '/');
            if (relative == "manifest.jsonl" || relative.StartsWith("synthetic/", StringComparison.Ordinal)
                || relative.StartsWith("concepts/", StringComparison.Ordinal) || relative.StartsWith("inversions/", StringComparison.Ordinal))
                files[relative] = File.ReadAllBytes(file);
        }
        return files;
    }

    /// <summary>Asserts both folders hold the same result files with the same bytes, naming the first that differs.</summary>
    public static void AssertSameResults(string expectedWork, string actualWork)
    {
        var expected = Results(expectedWork);
        var actual = Results(actualWork);
        Assert.True(expected.Count > 0, $"{expectedWork} holds no results");
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (file, bytes) in expected)
            Assert.True(bytes.AsSpan().SequenceEqual(actual[file]), $"{file} differs between {expectedWork} and {actualWork}");
    }

    public static int ManifestLines(string work) =>
        File.Exists(Path.Combine(work, "manifest.jsonl")) ? File.ReadAllLines(Path.Combine(work, "manifest.jsonl")).Length : 0;

    public static string[] Pngs(string work) =>
        Directory.Exists(Path.Combine(work, "synthetic"))
            ? Directory.GetFiles(Path.Combine(work, "synthetic"), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>Files left by interrupted atomic writes.</summary>
    public static string[] Partials(string work) =>
        Directory.GetFiles(work, "*" + DiffII.Storage.AtomicFile.TempSuffix, SearchOption.AllDirectories);
}
