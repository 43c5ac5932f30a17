using DiffII.Augmentation;
using DiffII.Storage;

namespace DiffII.Tests.Augmentation;

public sealed class ManifestTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("diffii-manifest-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    static ManifestEntry Entry(string id) => new()
    {
        Id = id, File = $"synthetic/cat/{id}.png", ClassName = "cat", ClassIndex = 0, Labels = [new("cat", 1f)], Strategy = "diff-ii",
        Sources = ["a", "b"], Phi = 1.5, Suffix = "on a branch.", SplitRatio = 0.3, Prompt = "a photo of a <class_0> bird", Seed = 7,
    };

    [Fact]
    public void AppendedEntries_SurviveReopening_AndATruncatedLastLineIsDropped()
    {
        string path = Path.Combine(_dir, "manifest.jsonl");
        var m = Manifest.Open(path);
        m.Append(Entry("s1"));
        m.Append(Entry("s2"));
        File.AppendAllText(path, "{\"id\":\"s3\",\"fi"); // a process killed mid-line
        var again = Manifest.Open(path);
        Assert.Equal(["s1", "s2"], again.Entries.Select(e => e.Id).ToArray());
        Assert.EndsWith("}\n", File.ReadAllText(path));
        Assert.Equal(1.5, again.Entries[0].Phi);
        Assert.Throws<InvalidOperationException>(() => again.Append(Entry("s1")));
    }

    [Fact]
    public void CorruptLine_IsAnErrorNamingFileAndLine()
    {
        string path = Path.Combine(_dir, "manifest.jsonl");
        File.WriteAllText(path, "not json\n");
        var e = Assert.Throws<InvalidDataException>(() => Manifest.Open(path));
        Assert.Contains("line 1", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void SecondLockOnAWorkFolder_IsRefusedWhileTheFirstIsHeld()
    {
        using (WorkFolderLock.Acquire(_dir))
        {
            var e = Assert.Throws<WorkFolderInUseException>(() => WorkFolderLock.Acquire(_dir));
            Assert.Contains($"pid {Environment.ProcessId}", e.Message);
        }
        using var again = WorkFolderLock.Acquire(_dir); // released on dispose
    }
}
