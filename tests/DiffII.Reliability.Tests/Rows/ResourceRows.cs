using System.Buffers.Binary;
using System.Diagnostics;
using DiffII.Concepts;
using DiffII.Diffusion.Runtime;
using DiffII.Imaging;
using DiffII.MLNet;
using DiffII.MLNet.Data;
using DiffII.Reliability.Tests.Fixtures;
using DiffII.Reliability.Tests.Matrix;
using Microsoft.ML;
using static TorchSharp.torch;

namespace DiffII.Reliability.Tests.Rows;

/// <summary>
/// Resources and long runs: pixel bombs by shape, resumes that check what is on disk, a loss that turns NaN,
/// SIGTERM, the thread policy, and messages that name the thing.
/// </summary>
public static class ResourceRows
{
    const string BombWhen = "a PNG of under 40 KB claiming 1×500 000 or 1×1 000 000 pixels, or a 16×640 strip (40:1)";
    const string BombThen = "refused from the header's dimensions, before decoding or resizing, naming the file";
    const string MissingWhen = "a synthetic PNG deleted after the run, then the run again";
    const string MissingThen = "the missing image is made again (the same bytes) and the manifest matches the files";
    const string OwnJsonWhen = "an empty or cut-short JSON file of the run's own in the work folder: fit.json, concepts/concepts.json, concepts-checkpoint/state.json";
    const string OwnJsonThen = "an error naming the file, saying it is empty or damaged and what to do; the file is left as it is";

    public static IEnumerable<MatrixRow> All =>
    [
        MatrixRow.Sync("resources.pixel-bomb.library", Area.Resources, Layer.Library, BombWhen, BombThen, BombLibrary),
        new("resources.pixel-bomb.cli", Area.Resources, Layer.Cli, BombWhen, BombThen, BombCli),
        MatrixRow.Sync("resources.missing-synthetic.library", Area.Resources, Layer.Library, MissingWhen, MissingThen, MissingLibrary),
        new("resources.missing-synthetic.cli", Area.Resources, Layer.Cli, MissingWhen, MissingThen, MissingCli),
        new("resources.missing-synthetic.experiment", Area.Resources, Layer.Cli, "a synthetic PNG deleted after `diffii experiment`, then the experiment again",
            "the missing image is made again (the same bytes) and the experiment ends as before (it failed with \"Event we were waiting on was subject to an exception\")", MissingExperiment),
        MatrixRow.Sync("resources.nonfinite-loss.library", Area.Resources, Layer.Library, "concept learning whose loss becomes NaN (a NaN weight in the U-Net)",
            "learning stops at that step with a message naming the step and the loss; no concepts.json, no checkpoint of the NaN state", NonFiniteLoss),
        MatrixRow.Sync("resources.damaged-own-json.library", Area.Resources, Layer.Library, OwnJsonWhen, OwnJsonThen, OwnJsonLibrary),
        new("resources.damaged-own-json.cli", Area.Resources, Layer.Cli, OwnJsonWhen, OwnJsonThen, OwnJsonCli),
        MatrixRow.Sync("resources.sigterm.cli", Area.Resources, Layer.Cli, "SIGTERM (what Slurm, Docker and Kubernetes send) during concept learning",
            "treated like Ctrl+C: a checkpoint is saved, the process says so and exits 143", Sigterm),
        MatrixRow.Sync("resources.threads.library", Area.Resources, Layer.Library,
            "the thread count: --threads, DIFFII_THREADS, OMP_NUM_THREADS, else the cores this process may use (affinity, cgroup quota)",
            "applied to libtorch before any work by the CLI; a library process gets sleeping OpenMP waits and at most its usable cores at libtorch's first load; a bad value is refused naming the variable", Threads),
        new("resources.long-suffix.cli", Area.Resources, Layer.Cli, "a 2 000-word prompt suffix",
            "a warning that the prompt is cut at the text encoder's 77 tokens, naming the suffix", LongSuffix),
        MatrixRow.Sync("resources.long-suffix.mlnet", Area.Resources, Layer.MLNet, "a 2 000-word prompt suffix",
            "the augmenter's and the fitted transformer's Warnings name the suffix and the 77 tokens; short suffixes give none", LongSuffixMLNet),
    ];

    // ---- pixel bombs ----

    static byte[] Strip(int width, int height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
        var rows = new byte[(long)height * (1 + 3 * width)];
        return ImageFiles.PngFile(ihdr, rows);
    }

    static readonly (string Name, int Width, int Height)[] Bombs = [("tall.png", 1, 500_000), ("taller.png", 1, 1_000_000), ("strip.png", 640, 16)];

    static void BombLibrary(Scratch s)
    {
        foreach (var (name, w, h) in Bombs)
        {
            byte[] png = Strip(w, h);
            Assert.True(png.Length < 40_000, $"{name} is {png.Length} bytes");
            string path = s.Path(name);
            File.WriteAllBytes(path, png);
            long before = GC.GetTotalAllocatedBytes(precise: true);
            var e = Assert.Throws<ImageDecodeException>(() => ImageCodec.DecodeFile(path, minSide: 16));
            Assert.Contains(path, e.Message);
            Assert.Contains($"{w}×{h}", e.Message);
            Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 64 << 20, "the refusal allocated like a decode");
        }
    }

    static async Task BombCli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        File.WriteAllBytes(Path.Combine(images, "a", "tall.png"), Strip(1, 500_000));
        var line = (await CliRunner.Run(["augment", .. Tiny.CliArgs(s.Path("work"), images)])).OneErrorLine();
        Assert.Contains(Path.Combine(images, "a", "tall.png"), line);
        Assert.Contains("1×500000", line);
    }

    // ---- resumes check the files ----

    static void MissingLibrary(Scratch s)
    {
        using var sd = Tiny.Load();
        string work = s.Path("work");
        var images = Tiny.Images(("a", 2), ("b", 2));
        IReadOnlyList<SyntheticImage> first;
        using (var augmenter = new DiffIIAugmenter(sd, Tiny.Options(), work)) first = augmenter.Run(images);
        var victim = first[1];
        byte[] bytes = File.ReadAllBytes(victim.ImagePath);
        File.Delete(victim.ImagePath);
        IReadOnlyList<SyntheticImage> second;
        using (var augmenter = new DiffIIAugmenter(sd, Tiny.Options(), work)) second = augmenter.Run(images);
        Assert.Equal(first.Count, second.Count);
        Assert.True(File.Exists(victim.ImagePath), "the deleted image was not made again");
        Assert.Equal(bytes, File.ReadAllBytes(victim.ImagePath));
        Assert.Equal(Outputs.Pngs(work).Length, Outputs.ManifestLines(work));
    }

    static async Task MissingCli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string work = s.Path("work");
        (await CliRunner.Run(["augment", .. Tiny.CliArgs(work, images, "--expansion", "2")])).AssertOk();
        var pngs = Outputs.Pngs(work);
        Assert.Equal(8, pngs.Length);
        byte[] bytes = File.ReadAllBytes(pngs[3]);
        File.Delete(pngs[3]);
        var rerun = await CliRunner.Run(["augment", .. Tiny.CliArgs(work, images, "--expansion", "2"), "--json"]);
        rerun.AssertOk();
        Assert.Contains("\"synthetic\": 8", rerun.Stdout);
        Assert.Equal(bytes, File.ReadAllBytes(pngs[3]));
        Assert.Equal(8, Outputs.ManifestLines(work));
    }

    static async Task MissingExperiment(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 4), ("b", 4));
        string work = s.Path("work");
        string[] args = ["experiment", .. Tiny.CliArgs(work, images, "--expansion", "1"), "--out", s.Path("model.zip"), "--test-fraction", "0.5", "--json"];
        var first = await CliRunner.Run(args);
        first.AssertOk();
        string run = Path.Combine(work, "runs", "diff-ii"); // the experiment's augmenter folder for its strategy
        var pngs = Outputs.Pngs(run);
        Assert.NotEmpty(pngs);
        byte[] bytes = File.ReadAllBytes(pngs[^1]);
        File.Delete(pngs[^1]);
        var rerun = await CliRunner.Run(args);
        rerun.AssertOk();
        Assert.Equal(bytes, File.ReadAllBytes(pngs[^1]));
        Assert.Equal(pngs.Length, Outputs.ManifestLines(run));
    }

    // ---- a NaN loss ----

    static void NonFiniteLoss(Scratch s)
    {
        using var sd = Tiny.Load();
        using (no_grad())
            sd.Unet.parameters().First().Fill_(double.NaN);
        string work = s.Path("work");
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(learnSteps: 4), work);
        var e = Assert.Throws<NonFiniteLossException>(() => augmenter.Fit(Tiny.Images(("a", 2), ("b", 2))));
        Assert.Equal(1, e.Step);
        Assert.Contains("step 1", e.Message);
        Assert.Contains("NaN", e.Message);
        Assert.False(File.Exists(Path.Combine(work, "concepts", "concepts.json")));
        Assert.False(Directory.Exists(Path.Combine(work, "concepts-checkpoint")), "a checkpoint of the NaN state was saved");
    }

    // ---- damaged bookkeeping ----

    // ---- the run's own JSON files, empty or cut short ----

    /// <summary>Each JSON file a run writes and a rerun reads, relative to the work folder.</summary>
    static readonly string[] OwnJsonFiles = ["fit.json", "concepts/concepts.json", "concepts-checkpoint/state.json"];

    /// <summary>Each way such a file is found after a crash or a full disk, with the word the error uses.</summary>
    static readonly (string Kind, string Text)[] Damages = [("empty", ""), ("damaged", "{\"Step\": 3, \"Los")];

    /// <summary>
    /// A copy of the finished work folder <paramref name="done"/> with <paramref name="file"/> damaged; for the
    /// checkpoint's state.json the concepts are removed, so the rerun learns again and resumes from it.
    /// </summary>
    static string Damaged(Scratch s, string done, string file, (string Kind, string Text) damage)
    {
        string work = s.Path($"{file.Replace('/', '_')}-{damage.Kind}");
        foreach (string source in Directory.GetFiles(done, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(work, Path.GetRelativePath(done, source));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(source, target);
        }
        if (file.StartsWith("concepts-checkpoint/", StringComparison.Ordinal)) Directory.Delete(Path.Combine(work, "concepts"), true);
        string path = Path.Combine(work, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, damage.Text);
        return work;
    }

    static void OwnJsonLibrary(Scratch s)
    {
        using var sd = Tiny.Load();
        var images = Tiny.Images(("a", 2), ("b", 2));
        string done = s.Path("done");
        using (var augmenter = new DiffIIAugmenter(sd, Tiny.Options(), done)) augmenter.LearnConcepts(images);
        foreach (string file in OwnJsonFiles)
            foreach (var damage in Damages)
            {
                string work = Damaged(s, done, file, damage);
                using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(), work);
                var e = Assert.Throws<InvalidDataException>(() => augmenter.LearnConcepts(images));
                string path = Path.Combine(work, file);
                Assert.Contains(path, e.Message);
                Assert.Contains($"is {damage.Kind}", e.Message);
                Assert.Contains("delete it and run again", e.Message);
                Assert.Equal(damage.Text, File.ReadAllText(path));
            }
    }

    static async Task OwnJsonCli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string done = s.Path("done");
        (await CliRunner.Run(["learn", "--work", done, "--images", images, "--model", Tiny.ModelPath, "--metaclass", "bird",
            "--learn-steps", "2", "--lora-rank", "2", "--batch", "2"])).AssertOk();
        foreach (string file in OwnJsonFiles)
            foreach (var damage in Damages)
            {
                string work = Damaged(s, done, file, damage);
                var line = (await CliRunner.Run(["augment", .. Tiny.CliArgs(work, images)])).OneErrorLine();
                Assert.Contains(Path.Combine(work, file), line);
                Assert.Contains($"is {damage.Kind}", line);
                Assert.Equal(damage.Text, File.ReadAllText(Path.Combine(work, file)));
            }
    }

    // ---- SIGTERM ----

    static void Sigterm(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string work = s.Path("work");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "DiffII.Cli.dll"), "learn", "--work", work, "--images", images, "--model", Tiny.ModelPath,
                     "--metaclass", "bird", "--learn-steps", "1000000", "--lora-rank", "2", "--batch", "2" })
            start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var learning = new TaskCompletionSource();
        var stderr = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.AppendLine(e.Data);
            if (e.Data.Contains("learning concepts", StringComparison.Ordinal)) learning.TrySetResult();
        };
        process.BeginErrorReadLine();
        _ = process.StandardOutput.ReadToEndAsync();
        try
        {
            // The message is built only on failure, under the lock: StringBuilder.ToString races the reader's appends.
            if (!learning.Task.Wait(TimeSpan.FromMinutes(2)))
                lock (stderr) Assert.Fail("concept learning did not start within 2 minutes:\n" + stderr);
            using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", process.Id.ToString()]) { UseShellExecute = false })!) kill.WaitForExit();
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "the process did not stop within 2 minutes of SIGTERM");
            process.WaitForExit();
        }
        finally { if (!process.HasExited) process.Kill(entireProcessTree: true); }
        string text;
        lock (stderr) text = stderr.ToString();
        Assert.True(process.ExitCode == 143, $"exit {process.ExitCode}\n{text}");
        Assert.Contains("SIGTERM received", text);
        Assert.Contains("stopped; run the same command again to resume", text);
        Assert.True(File.Exists(Path.Combine(work, "concepts-checkpoint", "state.json")), "no checkpoint was saved:\n" + text);
    }

    // ---- threads ----

    static void Threads(Scratch _)
    {
        string? env = Environment.GetEnvironmentVariable(ThreadPolicy.EnvironmentVariable);
        string? omp = Environment.GetEnvironmentVariable("OMP_NUM_THREADS");
        try
        {
            var (cores, reason) = ThreadPolicy.AvailableCores();
            Assert.InRange(cores, 1, Environment.ProcessorCount);
            Assert.NotEmpty(reason);
            Environment.SetEnvironmentVariable(ThreadPolicy.EnvironmentVariable, null);
            Environment.SetEnvironmentVariable("OMP_NUM_THREADS", null);
            Assert.Equal(cores, ThreadPolicy.Choose(null).Threads);
            // What a library process gets at libtorch's first load: libtorch's own count, lowered to the usable cores.
            Assert.Null(ThreadPolicy.LibraryDefault(cores));
            Assert.Equal(cores, ThreadPolicy.LibraryDefault(cores + 8));
            Environment.SetEnvironmentVariable("OMP_NUM_THREADS", "3");
            Assert.Equal(new ThreadPolicy.Choice(3, "OMP_NUM_THREADS"), ThreadPolicy.Choose(null));
            Assert.Null(ThreadPolicy.LibraryDefault(64)); // libtorch already follows OMP_NUM_THREADS
            Environment.SetEnvironmentVariable(ThreadPolicy.EnvironmentVariable, "2");
            Assert.Equal(new ThreadPolicy.Choice(2, ThreadPolicy.EnvironmentVariable), ThreadPolicy.Choose(null));
            Assert.Equal(2, ThreadPolicy.LibraryDefault(64));
            Assert.Equal(new ThreadPolicy.Choice(1, "--threads"), ThreadPolicy.Choose(1));
            foreach (var bad in new[] { "0", "-2", "two", "1.5", "NaN", "99999" })
            {
                Environment.SetEnvironmentVariable(ThreadPolicy.EnvironmentVariable, bad);
                var e = Assert.ThrowsAny<ArgumentException>(() => ThreadPolicy.Choose(null));
                Assert.Contains(ThreadPolicy.EnvironmentVariable, e.Message);
            }
            Environment.SetEnvironmentVariable(ThreadPolicy.EnvironmentVariable, "2");
            ThreadPolicy.Apply(null);
            Assert.Equal(2, get_num_threads());
            ThreadPolicy.Apply(1);
            Assert.Equal(1, get_num_threads());
        }
        finally
        {
            Environment.SetEnvironmentVariable(ThreadPolicy.EnvironmentVariable, env);
            Environment.SetEnvironmentVariable("OMP_NUM_THREADS", omp);
            set_num_threads(1);
        }
    }

    // ---- an over-long suffix ----

    static void LongSuffixMLNet(Scratch s)
    {
        string long2000 = string.Join(' ', Enumerable.Range(0, 2000).Select(i => i % 2 == 0 ? "standing" : "branch"));
        using (var sd = Tiny.Load())
        {
            using var augmenter = new DiffIIAugmenter(sd, Tiny.Options() with { Suffixes = [long2000, "flying over water."] }, s.Path("library"));
            var warning = Assert.Single(augmenter.Warnings);
            Assert.Contains("standing branch", warning);
            Assert.Contains("77", warning);
            using var quiet = new DiffIIAugmenter(sd, Tiny.Options(), s.Path("quiet"));
            Assert.Empty(quiet.Warnings);
        }
        var ml = new MLContext(seed: 1);
        var data = ImageFolderDataset.Load(ml, Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2)));
        var fitted = new DiffIIAugmentEstimator(Tiny.MLNet(s.Path("cache")) with { Suffixes = [long2000], ExpansionRate = 0.5 }).Fit(data);
        Assert.Contains("77", Assert.Single(fitted.Warnings));
    }

    static async Task LongSuffix(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string suffix = string.Join(' ', Enumerable.Range(0, 2000).Select(i => i % 2 == 0 ? "standing" : "branch"));
        File.WriteAllText(s.Path("suffixes.txt"), suffix + "\nflying over water.\n");
        var args = Tiny.CliArgs(s.Path("work"), images, "--expansion", "0.5").ToList();
        args.RemoveRange(args.IndexOf("--suffix-preset"), 2);
        var run = await CliRunner.Run(["augment", .. args, "--suffix-file", s.Path("suffixes.txt")]);
        run.AssertOk();
        var warning = Assert.Single(run.ErrorLines, l => l.StartsWith("warning:", StringComparison.Ordinal) && l.Contains("tokens", StringComparison.Ordinal));
        Assert.Contains("standing branch", warning);
        Assert.Contains("77", warning);
    }
}
