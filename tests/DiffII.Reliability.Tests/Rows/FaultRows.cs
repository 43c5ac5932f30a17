using System.Text.Json;
using DiffII.Augmentation;
using DiffII.MLNet;
using DiffII.MLNet.Data;
using DiffII.Reliability.Tests.Fixtures;
using DiffII.Reliability.Tests.Matrix;
using DiffII.Storage;
using Microsoft.ML;

namespace DiffII.Reliability.Tests.Rows;

/// <summary>
/// Faults: a run stopped, killed, starved of disk or write access, or doubled up on one folder never loses what it
/// made, and the rerun does exactly the missing work, ending byte-identical to an uninterrupted run.
/// </summary>
public static class FaultRows
{
    const string CancelThen = "stops at the next safe point (CLI: exit 130, 'run the same command again'); the rerun resumes exactly where it stopped and ends byte-identical to an uninterrupted run";

    public static IEnumerable<MatrixRow> All =>
    [
        .. new[] { "learn", "invert", "generate" }.Select(stage => new MatrixRow($"fault.cancel-{stage}.library", Area.Faults, Layer.Library,
            $"cancellation while {Doing(stage)}", CancelThen, s => CancelLibrary(s, stage))),
        new("fault.cancel-generate.mlnet", Area.Faults, Layer.MLNet, "cancellation while generating images", CancelThen, CancelMLNet),
        .. new[] { "learn", "invert", "generate" }.Select(stage => new MatrixRow($"fault.cancel-{stage}.cli", Area.Faults, Layer.Cli,
            $"cancellation while {Doing(stage)}", CancelThen, s => CancelCli(s, stage))),
        new("fault.killed-writing.cli", Area.Faults, Layer.Cli, "the process killed (SIGKILL) while writing an image, between writing its bytes and renaming it into place",
            "the image never appears under its real name; the rerun removes the temporary file, makes exactly that image and the ones after it, and ends byte-identical; the killed run's lock is gone", KilledWhileWriting),
        new("fault.crash-leftovers.library", Area.Faults, Layer.Library,
            "a crash's leftovers: a half-written PNG under its real name with no manifest line, a manifest line cut short, a stray temporary file",
            "the manifest alone says what is done: the cut line is dropped, both images are made again, the temporary file is removed; the result is byte-identical", CrashLeftovers),
        new("fault.read-only.library", Area.Faults, Layer.Library, ReadOnlyWhen, WriteFaultThen, s => WriteFault(s, Fault.ReadOnly)),
        new("fault.read-only.cli", Area.Faults, Layer.Cli, ReadOnlyWhen, WriteFaultThen, s => WriteFaultCli(s, Fault.ReadOnly)),
        new("fault.disk-full.library", Area.Faults, Layer.Library, DiskFullWhen, WriteFaultThen, s => WriteFault(s, Fault.DiskFull)),
        new("fault.disk-full.cli", Area.Faults, Layer.Cli, DiskFullWhen, WriteFaultThen, s => WriteFaultCli(s, Fault.DiskFull)),
        MatrixRow.Sync("fault.two-runs.library", Area.Faults, Layer.Library, TwoRunsWhen, TwoRunsThen, TwoRunsLibrary),
        MatrixRow.Sync("fault.two-runs.mlnet", Area.Faults, Layer.MLNet, TwoRunsWhen, TwoRunsThen, TwoRunsMLNet),
        new("fault.two-runs.cli", Area.Faults, Layer.Cli, TwoRunsWhen, TwoRunsThen + "; the second run writes nothing (not even its settings)", TwoRunsCli),
    ];

    static string Doing(string stage) => stage switch
    {
        "learn" => "learning concepts",
        "invert" => "inverting images",
        _ => "generating images",
    };

    // ---- cancellation, then resume ----

    static readonly (string Label, int Count)[] Classes = [("a", 2), ("b", 2), ("c", 1)];

    /// <summary>Four learning steps (so a stop falls between checkpoints), inversions one by one, images two per batch.</summary>
    static AugmentationOptions CancelOptions => Tiny.Options(learnSteps: 4, generationBatch: 2);

    static Task CancelLibrary(Scratch s, string stage)
    {
        var images = Tiny.Images(Classes);
        string straight = s.Path("straight"), resumed = s.Path("resumed");
        using (var sd = Tiny.Load())
        using (var whole = new DiffIIAugmenter(sd, CancelOptions, straight))
            whole.Run(images);

        // Stop in the middle of the stage; then resume in the same process, on the same loaded model, as an
        // application that catches the cancellation and calls Run again would.
        using var model = Tiny.Load();
        using var cancel = new CancellationTokenSource();
        int stopAt = stage switch { "learn" => 3, "invert" => 3, _ => 4 };
        using (var first = new DiffIIAugmenter(model, CancelOptions, resumed))
            Assert.ThrowsAny<OperationCanceledException>(() => first.Run(images,
                new SyncProgress<AugmentationProgress>(p => { if (p.Stage == stage && p.Done >= stopAt) cancel.Cancel(); }), cancel.Token));

        if (stage == "learn")
            Assert.All(model.Unet.Attentions(), a => Assert.True(a.Attention.Adapters is null, $"{a.Name} still runs the half-trained LoRA after the stop"));
        var before = Outputs.Results(resumed);
        var seen = new List<AugmentationProgress>();
        using (var second = new DiffIIAugmenter(model, CancelOptions, resumed))
            second.Run(images, new SyncProgress<AugmentationProgress>(seen.Add));

        var stages = seen.Select(p => p.Stage).Distinct().ToList();
        switch (stage)
        {
            case "learn":
                // Stopped after step 3 of 4: the rerun trains step 4 only.
                Assert.Equal(4, seen.First(p => p.Stage == "learn").Done);
                break;
            case "invert":
                Assert.DoesNotContain("learn", stages);
                // Class a (two inversions) was saved before the stop; the rerun starts after it.
                Assert.True(before.ContainsKey("inversions/class-0000.safetensors"));
                Assert.Equal(2, seen.First(p => p.Stage == "invert").Done);
                break;
            default:
                Assert.DoesNotContain("learn", stages);
                Assert.Equal(4, seen.First(p => p.Stage == "generate").Done);
                break;
        }
        AssertUntouched(before, resumed);
        Outputs.AssertSameResults(straight, resumed);
        return Task.CompletedTask;
    }

    /// <summary>What was made before the stop is still there, unchanged (the manifest only grew).</summary>
    static void AssertUntouched(SortedDictionary<string, byte[]> before, string work)
    {
        foreach (var (file, bytes) in before)
        {
            byte[] now = File.ReadAllBytes(Path.Combine(work, file));
            bool kept = file == "manifest.jsonl" ? now.AsSpan().StartsWith(bytes) : now.AsSpan().SequenceEqual(bytes);
            Assert.True(kept, $"{file}, made before the stop, was changed by the rerun");
        }
    }

    static Task CancelMLNet(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), Classes);
        var ml = new MLContext(seed: 1);
        var data = ImageFolderDataset.Load(ml, images);
        string straight = s.Path("straight"), resumed = s.Path("resumed");
        var whole = new DiffIIAugmentEstimator(Tiny.MLNet(straight)).Fit(data);

        using var cancel = new CancellationTokenSource();
        var stopping = new DiffIIAugmentEstimator(Tiny.MLNet(resumed),
            progress: new SyncProgress<AugmentationProgress>(p => { if (p.Stage == "generate" && p.Done >= 3) cancel.Cancel(); }),
            cancellationToken: cancel.Token);
        Assert.ThrowsAny<OperationCanceledException>(() => stopping.Fit(data));
        int made = Outputs.ManifestLines(resumed);
        Assert.InRange(made, 3, 9);

        var seen = new List<AugmentationProgress>();
        var again = new DiffIIAugmentEstimator(Tiny.MLNet(resumed), progress: new SyncProgress<AugmentationProgress>(seen.Add)).Fit(data);
        Assert.DoesNotContain(seen, p => p.Stage is "learn" or "invert" && p.Done == 1);
        Assert.Equal(made, seen.First(p => p.Stage == "generate").Done);
        Assert.Equal(whole.SyntheticRows.Select(r => (r.ClassName, Path.GetRelativePath(straight, r.ImagePath), r.Weight)),
            again.SyntheticRows.Select(r => (r.ClassName, Path.GetRelativePath(resumed, r.ImagePath), r.Weight)));
        Outputs.AssertSameResults(straight, resumed);
        return Task.CompletedTask;
    }

    static async Task CancelCli(Scratch s, string stage)
    {
        string images = Tiny.Folder(s.Path("images"), Classes);
        string straight = s.Path("straight"), resumed = s.Path("resumed");
        string[] Args(string work) => ["augment", .. Tiny.CliArgs(work, images, "--learn-steps", "4", "--expansion", "2")];
        (await CliRunner.Run(Args(straight))).AssertOk();

        // The tool prints a progress line per tenth of a stage; stop as Ctrl+C would when the chosen one appears.
        string stopLine = stage switch { "learn" => "learning concepts 3/4", "invert" => "inverting images 2/6", _ => "generating images 8/10" };
        using var cancel = new CancellationTokenSource();
        var watcher = new WatchingWriter(line => { if (line.StartsWith(stopLine, StringComparison.Ordinal)) cancel.Cancel(); });
        var stopped = await CliRunner.Run(cancel.Token, watcher, Args(resumed));
        Assert.True(stopped.Code == 130, stopped.ToString());
        Assert.Contains("stopped; run the same command again to resume", stopped.Stderr);
        var before = Outputs.Results(resumed);

        var rerun = await CliRunner.Run(["augment", "--work", resumed]);
        rerun.AssertOk();
        string firstLine(string prefix) => rerun.ErrorLines.First(l => l.StartsWith(prefix, StringComparison.Ordinal));
        switch (stage)
        {
            case "learn":
                Assert.StartsWith("learning concepts 4/4", firstLine("learning concepts"));
                break;
            case "invert":
                Assert.DoesNotContain("learning concepts", rerun.Stderr);
                Assert.StartsWith("inverting images 2/6", firstLine("inverting images"));
                break;
            default:
                Assert.DoesNotContain("learning concepts", rerun.Stderr);
                Assert.StartsWith("generating images 8/10", firstLine("generating images"));
                break;
        }
        AssertUntouched(before, resumed);
        Outputs.AssertSameResults(straight, resumed);
    }

    // ---- killed while writing ----

    static async Task KilledWhileWriting(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string straight = s.Path("straight"), killed = s.Path("killed");
        string[] Args(string work) => ["augment", .. Tiny.CliArgs(work, images, "--expansion", "2", "--quiet")];

        // The third image of class a: two images are complete when the process dies renaming this one into place.
        const string victim = "synthetic/0000-a/diff-ii-c0000-00002.png";
        var renames = ChildProcess.RenameTargets(Args(straight), TimeSpan.FromMinutes(10));
        int n = renames.ToList().IndexOf(Path.Combine(straight, victim)) + 1;
        Assert.True(n > 0, $"the tool never renamed a file to {victim}; update the row. It renamed:\n{string.Join("\n", renames)}");
        ChildProcess.RunKilledAtRename(n, Args(killed), TimeSpan.FromMinutes(10));

        Assert.False(File.Exists(Path.Combine(killed, victim)), "the image being written must not appear under its real name");
        var partial = Assert.Single(Outputs.Partials(killed));
        Assert.Contains(Path.GetFileName(victim), partial);
        Assert.Equal(2, Outputs.ManifestLines(killed));

        var rerun = await CliRunner.Run(["augment", "--work", killed]);
        rerun.AssertOk();
        Assert.Contains("generating images 2/8", rerun.Stderr);
        Assert.Empty(Outputs.Partials(killed));
        Outputs.AssertSameResults(straight, killed);
    }

    // ---- what a crash leaves behind ----

    static Task CrashLeftovers(Scratch s)
    {
        var images = Tiny.Images(("a", 2), ("b", 2));
        var options = Tiny.Options(Strategy.RealGuidance);
        string straight = s.Path("straight"), crashed = s.Path("crashed");
        using (var sd = Tiny.Load())
        using (var whole = new DiffIIAugmenter(sd, options, straight))
            whole.Run(images);

        // The crashed folder: everything up to the last two images, as a crash would leave it.
        foreach (var file in Directory.GetFiles(straight, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(crashed, Path.GetRelativePath(straight, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        string manifest = Path.Combine(crashed, "manifest.jsonl");
        var lines = File.ReadAllLines(manifest);
        string half = JsonDocument.Parse(lines[^2]).RootElement.GetProperty("file").GetString()!;
        string cut = JsonDocument.Parse(lines[^1]).RootElement.GetProperty("file").GetString()!;
        File.WriteAllText(manifest, string.Join("\n", lines[..^2]) + "\n" + lines[^1][..(lines[^1].Length / 2)]);
        byte[] whole2 = File.ReadAllBytes(Path.Combine(crashed, half));
        File.WriteAllBytes(Path.Combine(crashed, half), whole2[..(whole2.Length / 2)]);
        File.Delete(Path.Combine(crashed, cut));
        string stray = Path.Combine(Path.GetDirectoryName(Path.Combine(crashed, cut))!, $".{Path.GetFileName(cut)}.123.abc{AtomicFile.TempSuffix}");
        File.WriteAllBytes(stray, [1, 2, 3]);

        var seen = new List<AugmentationProgress>();
        using (var sd = Tiny.Load())
        using (var resume = new DiffIIAugmenter(sd, options, crashed))
            resume.Run(images, new SyncProgress<AugmentationProgress>(seen.Add));
        Assert.Equal(lines.Length - 2, seen.First(p => p.Stage == "generate").Done);
        Assert.False(File.Exists(stray));
        Outputs.AssertSameResults(straight, crashed);
        return Task.CompletedTask;
    }

    // ---- the output folder turning read-only, or the disk filling up ----

    enum Fault { ReadOnly, DiskFull }

    const string ReadOnlyWhen = "the output folder turning read-only mid-run";
    const string DiskFullWhen = "the disk filling up mid-run (no space left on device)";
    const string WriteFaultThen = "stops with an error naming the image it could not write and saying the finished ones are kept; earlier images and manifest intact, no temporary files; the rerun completes byte-identically";

    /// <summary>
    /// Makes writes into <c>work/synthetic</c> fail once <see cref="Block"/> is called: really (chmod) where permission
    /// bits stop this process, else (root, as in CI) through the storage layer's injected fault, which throws what the
    /// OS throws (EACCES as UnauthorizedAccessException, ENOSPC as IOException).
    /// </summary>
    sealed class WriteBlocker : IDisposable
    {
        readonly string _synthetic;
        readonly Fault _fault;
        readonly IDisposable _injection;
        volatile bool _blocked;

        public WriteBlocker(string work, Fault fault)
        {
            _synthetic = Path.Combine(work, "synthetic");
            _fault = fault;
            _injection = WriteFaults.Inject(Check);
        }

        bool ByPermissions => _fault == Fault.ReadOnly && PermissionBitsStopWrites;

        Exception? Check(string path)
        {
            if (!_blocked || ByPermissions || !path.StartsWith(_synthetic + Path.DirectorySeparatorChar, StringComparison.Ordinal)) return null;
            return _fault == Fault.DiskFull
                ? new IOException($"No space left on device : '{path}'", 28)
                : new UnauthorizedAccessException($"Access to the path '{path}' is denied.");
        }

        public void Block()
        {
            _blocked = true;
            if (ByPermissions) SetWritable(false);
        }

        void SetWritable(bool writable)
        {
            if (OperatingSystem.IsWindows() || !Directory.Exists(_synthetic)) return;
            var mode = UnixFileMode.UserRead | UnixFileMode.UserExecute | (writable ? UnixFileMode.UserWrite : 0);
            foreach (var dir in Directory.GetDirectories(_synthetic, "*", SearchOption.AllDirectories).Prepend(_synthetic))
                File.SetUnixFileMode(dir, mode);
        }

        public void Dispose()
        {
            _injection.Dispose();
            if (ByPermissions) SetWritable(true);
        }
    }

    /// <summary>Whether a folder without write permission stops this process writing into it (it does not for root).</summary>
    static readonly bool PermissionBitsStopWrites = ProbePermissions();

    static bool ProbePermissions()
    {
        if (OperatingSystem.IsWindows()) return false;
        string probe = Directory.CreateTempSubdirectory("diffii-permission-probe-").FullName;
        try
        {
            File.SetUnixFileMode(probe, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            try { File.WriteAllText(Path.Combine(probe, "x"), "x"); return false; }
            catch (UnauthorizedAccessException) { return true; }
        }
        finally
        {
            File.SetUnixFileMode(probe, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(probe, recursive: true);
        }
    }

    static string FaultWords(Fault fault) => fault == Fault.DiskFull ? "No space left" : "denied";

    static Task WriteFault(Scratch s, Fault fault)
    {
        var images = Tiny.Images(("a", 2), ("b", 2));
        var options = Tiny.Options(Strategy.RealGuidance, generationBatch: 2);
        string straight = s.Path("straight"), faulty = s.Path("faulty");
        using (var sd = Tiny.Load())
        using (var whole = new DiffIIAugmenter(sd, options, straight))
            whole.Run(images);

        using (var sd = Tiny.Load())
        using (var blocker = new WriteBlocker(faulty, fault))
        using (var first = new DiffIIAugmenter(sd, options, faulty))
        {
            var e = Assert.Throws<IOException>(() => first.Run(images, new SyncProgress<AugmentationProgress>(p => { if (p.Stage == "generate" && p.Done >= 2) blocker.Block(); })));
            Assert.Contains(Path.Combine(faulty, "synthetic"), e.Message);
            Assert.Contains("The 2 images made so far are complete", e.Message);
            Assert.Contains(FaultWords(fault), e.Message);
        }
        AssertKeptAndResume(straight, faulty, 2, () =>
        {
            using var sd = Tiny.Load();
            using var again = new DiffIIAugmenter(sd, options, faulty);
            again.Run(images);
        });
        return Task.CompletedTask;
    }

    static void AssertKeptAndResume(string straight, string faulty, int kept, Action resume)
    {
        Assert.Equal(kept, Outputs.ManifestLines(faulty));
        Assert.Equal(kept, Outputs.Pngs(faulty).Length);
        foreach (string png in Outputs.Pngs(faulty))
            Assert.Equal(File.ReadAllBytes(Path.Combine(straight, Path.GetRelativePath(faulty, png))), File.ReadAllBytes(png));
        Assert.Empty(Outputs.Partials(faulty));
        resume();
        Outputs.AssertSameResults(straight, faulty);
    }

    static async Task WriteFaultCli(Scratch s, Fault fault)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string straight = s.Path("straight"), faulty = s.Path("faulty");
        string[] Args(string work) => ["augment", .. Tiny.CliArgs(work, images, "--strategy", "real-guidance", "--expansion", "3")];
        (await CliRunner.Run(Args(straight))).AssertOk();

        // The tool generates 8 images per batch: the fault strikes once the first batch is written.
        CliResult failed;
        using (var blocker = new WriteBlocker(faulty, fault))
        {
            var watcher = new WatchingWriter(line => { if (line.StartsWith("generating images 8/12", StringComparison.Ordinal)) blocker.Block(); });
            failed = await CliRunner.Run(CancellationToken.None, watcher, Args(faulty));
        }
        string line = failed.OneErrorLine();
        Assert.Contains(Path.Combine(faulty, "synthetic"), line);
        Assert.Contains("The 8 images made so far are complete", line);
        Assert.Contains(FaultWords(fault), line);
        AssertKeptAndResume(straight, faulty, 8, () => CliRunner.Run(["augment", "--work", faulty]).GetAwaiter().GetResult().AssertOk());
    }

    // ---- two runs on one work folder ----

    const string TwoRunsWhen = "two runs on the same work folder at once";
    const string TwoRunsThen = "the second is refused at once with an error naming the folder and the process holding it; the first runs on undisturbed";

    static void TwoRunsLibrary(Scratch s)
    {
        using var sd = Tiny.Load();
        string work = s.Path("work");
        using var first = new DiffIIAugmenter(sd, Tiny.Options(), work);
        var e = Assert.Throws<WorkFolderInUseException>(() => new DiffIIAugmenter(sd, Tiny.Options(), work));
        Assert.Contains(work, e.Message);
        Assert.Contains($"pid {Environment.ProcessId}", e.Message);
    }

    static void TwoRunsMLNet(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string cache = s.Path("cache");
        using var held = WorkFolderLock.Acquire(cache);
        var e = Assert.Throws<WorkFolderInUseException>(() => new DiffIIAugmentEstimator(Tiny.MLNet(cache)).Fit(ImageFolderDataset.Load(new MLContext(seed: 1), images)));
        Assert.Contains(cache, e.Message);
        Assert.Contains($"pid {Environment.ProcessId}", e.Message);
    }

    static async Task TwoRunsCli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string work = s.Path("work");
        string settingsFile = Path.Combine(work, Cli.RunSettings.FileName);
        CliResult? second = null;
        string? settingsBefore = null;
        // When the first run is learning, start a second one (other options) on the same folder and let it finish.
        var watcher = new WatchingWriter(line =>
        {
            if (second is not null || !line.StartsWith("learning concepts", StringComparison.Ordinal)) return;
            settingsBefore = File.ReadAllText(settingsFile);
            second = Task.Run(() => CliRunner.Run(["augment", .. Tiny.CliArgs(work, images, "--seed", "99", "--expansion", "1")])).GetAwaiter().GetResult();
        });
        var first = await CliRunner.Run(CancellationToken.None, watcher, ["augment", .. Tiny.CliArgs(work, images, "--expansion", "2")]);
        first.AssertOk();
        Assert.NotNull(second);
        string line = second!.OneErrorLine();
        Assert.Contains(work, line);
        Assert.Contains("in use by another run", line);
        Assert.Contains($"pid {Environment.ProcessId}", line);
        Assert.Equal(8, Outputs.ManifestLines(work));
        Assert.Equal(0, Cli.RunSettings.Load(work).Seed);
        Assert.Contains("\"Seed\": 0", settingsBefore!.Replace("\"seed\"", "\"Seed\""));
    }
}
