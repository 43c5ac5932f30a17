using System.Text.Json;

namespace DiffII.Cli.Tests;

public sealed class AugmentTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-cli-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    [Fact]
    public async Task Augment_MakesExpansionTimesTheImagesOfEachClass_WithAManifest_AndARerunRedoesNothing()
    {
        string images = Cli.Images(Path.Combine(_root, "images"), ("cardinal", 3), ("jay", 2));
        string work = Path.Combine(_root, "work");
        var run = await Cli.Run(["augment", .. Cli.Tiny(work, images, "--expansion", "2", "--json")]);
        Assert.True(run.Code == 0, run.ToString());

        using var json = JsonDocument.Parse(run.Stdout);
        Assert.Equal("ok", json.RootElement.GetProperty("status").GetString());
        Assert.Equal(10, json.RootElement.GetProperty("synthetic").GetInt32());
        var classes = json.RootElement.GetProperty("classes").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("synthetic").GetInt32());
        Assert.Equal(6, classes["cardinal"]);
        Assert.Equal(4, classes["jay"]);

        var manifest = File.ReadAllLines(Path.Combine(work, "manifest.jsonl"));
        Assert.Equal(10, manifest.Length);
        foreach (var line in manifest)
        {
            using var entry = JsonDocument.Parse(line);
            var e = entry.RootElement;
            Assert.Equal("diff-ii", e.GetProperty("strategy").GetString());
            Assert.True(File.Exists(Path.Combine(work, e.GetProperty("file").GetString()!)));
            Assert.Equal(2, e.GetProperty("steps").GetInt32());
            // The default suffixes for "bird" are the paper's CUB preset.
            Assert.Contains(e.GetProperty("suffix").GetString(), DiffII.Suffixes.SuffixPresets.Get("cub-5shot").Suffixes);
            string source = e.GetProperty("sources")[0].GetString()!;
            Assert.StartsWith(e.GetProperty("class").GetString() + "/", source);
        }

        byte[] before = File.ReadAllBytes(Path.Combine(work, "manifest.jsonl"));
        var cached = Directory.GetFiles(work, "*", SearchOption.AllDirectories).Where(f => !f.EndsWith(".lock.owner", StringComparison.Ordinal))
            .ToDictionary(f => f, File.GetLastWriteTimeUtc);
        var again = await Cli.Run(["augment", "--work", work]);
        Assert.True(again.Code == 0, again.ToString());
        Assert.DoesNotContain("learning concepts", again.Stderr);
        Assert.Contains("generating images 10/10", again.Stderr);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(work, "manifest.jsonl")));
        // Concepts, inversion pools and images are read, not rewritten (only the settings file is saved again).
        foreach (var (file, written) in cached)
            if (!file.EndsWith(RunSettings.FileName, StringComparison.Ordinal) && !file.EndsWith("fit.json", StringComparison.Ordinal))
                Assert.True(written == File.GetLastWriteTimeUtc(file), $"{file} was rewritten");
    }

    [Fact]
    public async Task ChainedSteps_EndWithTheSameManifestAsAugmentInOneGo_AndChangedSamplerSettingsAreRefused()
    {
        string images = Cli.Images(Path.Combine(_root, "images"), ("cardinal", 2), ("jay", 2));
        string straight = Path.Combine(_root, "straight");
        var one = await Cli.Run(["augment", .. Cli.Tiny(straight, images, "--expansion", "1", "--quiet")]);
        Assert.True(one.Code == 0, one.ToString());
        Assert.Equal("", one.Stdout);

        string chained = Path.Combine(_root, "chained");
        var learn = await Cli.Run(["learn", "--work", chained, "--images", images, "--model", SharedData.TinyA(), "--metaclass", "bird", "--steps", "2", "--lora-rank", "2", "--batch", "2"]);
        Assert.True(learn.Code == 0, learn.ToString());
        Assert.Contains("learned 2 concepts", learn.Stdout);
        var invert = await Cli.Run(["invert", "--work", chained, "--inversion-steps", "2"]);
        Assert.True(invert.Code == 0, invert.ToString());
        Assert.DoesNotContain("learning concepts", invert.Stderr);
        Assert.Contains("4 inversions", invert.Stdout);
        var generate = await Cli.Run(["generate", "--work", chained, "--steps", "2", "--expansion", "1"]);
        Assert.True(generate.Code == 0, generate.ToString());

        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "manifest.jsonl")), File.ReadAllBytes(Path.Combine(chained, "manifest.jsonl")));

        var changed = await Cli.Run(["generate", "--work", chained, "--steps", "3"]);
        Assert.Equal(1, changed.Code);
        var line = Assert.Single(changed.ErrorLines, l => l.StartsWith("diffii", StringComparison.Ordinal));
        Assert.Contains("--steps 2 (now 3)", line);
    }

    // Ctrl+C at each stage and the resume are rows of the reliability matrix (tests/DiffII.Reliability.Tests, fault.cancel-*.cli).

    [Fact]
    public async Task ACsvOfPathsAndLabels_WorksLikeAFolder_WithRelativePathsAgainstTheCsvFolder()
    {
        string images = Cli.Images(Path.Combine(_root, "data", "pics"), ("cardinal", 2), ("jay", 2));
        string csv = Path.Combine(_root, "data", "labels.csv");
        File.WriteAllLines(csv, ["path,label", "pics/cardinal/0.png,cardinal", "pics/cardinal/1.png,cardinal", "\"pics/jay/0.png\",jay", "pics/jay/1.png,jay"]);
        string work = Path.Combine(_root, "work");
        var args = Cli.Tiny(work, images, "--strategy", "real-guidance", "--expansion", "1", "--json").ToList();
        int at = args.IndexOf("--images");
        args[at] = "--csv";
        args[at + 1] = csv;
        var run = await Cli.Run(["augment", .. args]);
        Assert.True(run.Code == 0, run.ToString());
        using var json = JsonDocument.Parse(run.Stdout);
        Assert.Equal(4, json.RootElement.GetProperty("synthetic").GetInt32());
        Assert.Contains("\"sources\":[\"pics/jay/", File.ReadAllText(Path.Combine(work, "manifest.jsonl")));
    }
}
