using System.Diagnostics;
using DiffII.Imaging;
using DiffII.MLNet;
using DiffII.MLNet.Data;
using DiffII.Reliability.Tests.Fixtures;
using DiffII.Reliability.Tests.Matrix;
using Microsoft.ML;

namespace DiffII.Reliability.Tests.Rows;

/// <summary>
/// Folders: one walk for the library and the CLI that does not trust the file system (links out of the root or into
/// loops, FIFOs, system clutter), says what it skipped, and the file-system checks made before any work.
/// </summary>
public static class FolderRows
{
    const string LoopWhen = "a symlink loop in a class folder (bag/loop -> ..) and a link out of the image folder";
    const string LoopThen = "neither followed: each class keeps its own images, and the skipped links are reported";
    const string FifoWhen = "a FIFO named x.png in a class folder, or listed in a CSV";
    const string FifoThen = "never opened (no hang): skipped and reported as a FIFO in a folder, refused by name in a CSV";
    const string ClutterWhen = "._x.png, .Trash, .git, .DS_Store, a .tif, a .heic and loose images in the root";
    const string ClutterThen = "the same images through the library and the CLI; other types and loose images are reported as skipped";
    const string InsideWhen = "the work (cache) folder inside the image folder";
    const string InsideThen = "refused up front, before anything is written";

    public static IEnumerable<MatrixRow> All =>
    [
        MatrixRow.Sync("folders.symlink-loop.mlnet", Area.Folders, Layer.MLNet, LoopWhen, LoopThen, s => LoopLibrary(s)),
        new("folders.symlink-loop.cli", Area.Folders, Layer.Cli, LoopWhen, LoopThen, LoopCli),
        MatrixRow.Sync("folders.fifo.library", Area.Folders, Layer.Library, FifoWhen, FifoThen, FifoLabeledImage),
        MatrixRow.Sync("folders.fifo.mlnet", Area.Folders, Layer.MLNet, FifoWhen, FifoThen, FifoLibrary),
        new("folders.fifo.cli", Area.Folders, Layer.Cli, FifoWhen, FifoThen, FifoCli),
        MatrixRow.Sync("folders.clutter.mlnet", Area.Folders, Layer.MLNet, ClutterWhen, ClutterThen, ClutterLibrary),
        new("folders.clutter.cli", Area.Folders, Layer.Cli, ClutterWhen, ClutterThen, ClutterCli),
        new("folders.work-inside-images.cli", Area.Folders, Layer.Cli, InsideWhen, InsideThen, InsideCli),
        MatrixRow.Sync("folders.work-inside-images.mlnet", Area.Folders, Layer.MLNet, InsideWhen, InsideThen, InsideMLNet),
        new("folders.csv-same-file.cli", Area.Folders, Layer.Cli, "a CSV listing one image as img/s1.png and ./img/s1.png (or through a link)",
            "refused: the message names both lines and the resolved file", CsvSameFile),
        MatrixRow.Sync("folders.same-file-twice.mlnet", Area.Folders, Layer.MLNet, "an image column naming one file twice: a/0.png and a/./0.png relative to ImageFolder, or a link to it",
            "refused at Fit: the message names both rows and the resolved file", SameFileTwiceMLNet),
        new("folders.csv-header-late.cli", Area.Folders, Layer.Cli, "a CSV whose path,label header comes after blank lines",
            "the header is read as a header, not as an image path", CsvLateHeader),
        new("folders.not-a-folder.cli", Area.Folders, Layer.Cli, "--work /dev/null, --work naming a file, --suffix-file naming a folder, experiment --out naming a folder",
            "each refused before any work, the message naming the path and what it is", NotAFolder),
        new("folders.tmpdir.cli", Area.Folders, Layer.Cli, "a TMPDIR that cannot be written (here a path that is a file: CI runs as root, which permission bits do not stop)",
            "refused before any work, naming TMPDIR and the folder", TmpDir),
    ];

    /// <summary>Makes a FIFO with mkfifo(1) (coreutils, on every Linux).</summary>
    static void MakeFifo(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    /// <summary>A walk must not hang: it runs on a worker and must finish within <paramref name="seconds"/>.</summary>
    static T Bounded<T>(Func<T> body, int seconds = 60)
    {
        var task = Task.Run(body);
        Assert.True(task.Wait(TimeSpan.FromSeconds(seconds)), $"did not finish within {seconds} s (a FIFO or a loop was followed?)");
        return task.Result;
    }

    // ---- links ----

    static string LoopFolder(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("bag", 2), ("shoe", 3));
        File.CreateSymbolicLink(Path.Combine(images, "bag", "loop"), "..");
        string outside = Tiny.Folder(s.Path("outside"), ("far", 4));
        File.CreateSymbolicLink(Path.Combine(images, "shoe", "elsewhere"), outside);
        return images;
    }

    static void LoopLibrary(Scratch s)
    {
        string images = LoopFolder(s);
        var walk = Bounded(() => ImageFolderDataset.Walk(images));
        Assert.Equal(2, walk.Images.Count(i => i.Label == "bag"));
        Assert.Equal(3, walk.Images.Count(i => i.Label == "shoe"));
        Assert.Contains(walk.Skipped, e => e.Path.EndsWith("loop", StringComparison.Ordinal) && e.Reason.Contains("already walked"));
        Assert.Contains(walk.Skipped, e => e.Path.EndsWith("elsewhere", StringComparison.Ordinal) && e.Reason.Contains("outside"));
        Assert.Equal(5, ImageFolderDataset.Scan(images).Count);
    }

    /// <summary>Runs the CLI up to the point where it has read the images, then stops it at the model (none there): cheap.</summary>
    static Task<CliResult> WalkOnly(Scratch s, string images) =>
        CliRunner.Run(["augment", .. Tiny.CliArgs(s.Path("work-" + Guid.NewGuid().ToString("N")), images, "--model", s.Path("no-model"))]);

    static async Task LoopCli(Scratch s)
    {
        var run = await WalkOnly(s, LoopFolder(s));
        Assert.Contains("5 images in 2 classes", run.Stderr);
        Assert.Contains("bag/loop", run.Stderr);
        Assert.Contains("shoe/elsewhere", run.Stderr);
        Assert.Contains("no-model", run.OneErrorLine());
    }

    // ---- FIFOs ----

    static string FifoFolder(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        MakeFifo(Path.Combine(images, "a", "x.png"));
        return images;
    }

    static void FifoLibrary(Scratch s)
    {
        string images = FifoFolder(s);
        var walk = Bounded(() => ImageFolderDataset.Walk(images));
        Assert.Equal(4, walk.Images.Count);
        Assert.Contains(walk.Skipped, e => e.Path.EndsWith("x.png", StringComparison.Ordinal) && e.Reason.Contains("FIFO"));
        // A data view that names the FIFO (made by hand, not by the walk) is refused by row and path, without opening it.
        var ml = new MLContext(seed: 1);
        var rows = ImageFolderDataset.Scan(images).Append(new ImageFolderRow { Label = "a", ImagePath = Path.Combine(images, "a", "x.png") }).ToList();
        var e = Bounded(() => Assert.Throws<InvalidDataException>(() => new DiffIIAugmentEstimator(Tiny.MLNet(s.Path("cache"))).Fit(ml.Data.LoadFromEnumerable(rows))));
        Assert.Contains("x.png is a FIFO", e.Message);
        Assert.Contains("Row 4", e.Message);
    }

    static void FifoLabeledImage(Scratch s)
    {
        string images = FifoFolder(s);
        using var sd = Tiny.Load();
        var list = Tiny.Images(("a", 2), ("b", 2));
        list.Add(LabeledImage.FromFile(Path.Combine(images, "a", "x.png"), "a"));
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(), s.Path("work"));
        var e = Bounded(() => Assert.Throws<ImageDecodeException>(() => augmenter.Fit(list)));
        Assert.Contains("x.png", e.Message);
        Assert.Contains("FIFO", e.Message);
    }

    static async Task FifoCli(Scratch s)
    {
        string images = FifoFolder(s);
        var run = await Bounded(() => WalkOnly(s, images));
        Assert.Contains("4 images in 2 classes", run.Stderr);
        Assert.Contains("a/x.png (a FIFO", run.Stderr);

        // Listed in a CSV, the FIFO is refused by name, again without opening it.
        File.WriteAllText(s.Path("list.csv"), $"path,label\n{Path.Combine(images, "a", "0.png")},a\n{Path.Combine(images, "a", "x.png")},a\n");
        var csv = await Bounded(() => CliRunner.Run(["learn", "--work", s.Path("w2"), "--csv", s.Path("list.csv"), "--model", s.Path("no-model")]));
        Assert.Contains("FIFO", csv.OneErrorLine());
    }

    // ---- clutter ----

    static string ClutterFolder(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        byte[] png = Tiny.Picture(0, 5);
        File.WriteAllBytes(Path.Combine(images, "a", "._0.png"), [0, 5, 22, 7]);
        File.WriteAllBytes(Path.Combine(images, "a", ".DS_Store"), [1]);
        File.WriteAllBytes(Path.Combine(images, "a", "scan.tif"), png);
        File.WriteAllBytes(Path.Combine(images, "b", "phone.heic"), png);
        File.WriteAllBytes(Path.Combine(images, "loose.png"), png);
        Directory.CreateDirectory(Path.Combine(images, ".Trash", "old"));
        File.WriteAllBytes(Path.Combine(images, ".Trash", "old", "1.png"), png);
        Directory.CreateDirectory(Path.Combine(images, ".git", "objects"));
        File.WriteAllBytes(Path.Combine(images, ".git", "objects", "x.png"), png);
        Directory.CreateDirectory(Path.Combine(images, "b", "nested"));
        File.WriteAllBytes(Path.Combine(images, "b", "nested", "2.png"), png);
        return images;
    }

    static void ClutterLibrary(Scratch s)
    {
        string images = ClutterFolder(s);
        var walk = ImageFolderDataset.Walk(images);
        Assert.Equal(["a/0.png", "a/1.png", "b/0.png", "b/1.png", "b/nested/2.png"], walk.Images.Select(i => i.Id).ToArray());
        Assert.Equal(["a", "b"], walk.Classes.ToArray());
        foreach (var name in new[] { "scan.tif", "phone.heic", "loose.png", "._0.png" })
            Assert.Contains(walk.Skipped, e => Path.GetFileName(e.Path) == name);
        Assert.Contains("loose.png (an image outside any class folder)", walk.SkippedSummary(shown: 10));
    }

    static async Task ClutterCli(Scratch s)
    {
        string images = ClutterFolder(s);
        var run = await WalkOnly(s, images);
        Assert.Contains("5 images in 2 classes (a, b)", run.Stderr);
        Assert.Contains("warning: skipped", run.Stderr);
        Assert.Contains("loose.png", run.Stderr);
        Assert.Contains("scan.tif", run.Stderr);
    }

    // ---- the work folder inside the images ----

    static async Task InsideCli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string work = Path.Combine(images, "runs", "w");
        var line = (await CliRunner.Run(["augment", .. Tiny.CliArgs(work, images)])).OneErrorLine();
        Assert.Contains("inside the image folder", line);
        Assert.False(Directory.Exists(Path.Combine(images, "runs")), "the refused run wrote into the image folder");
        // A link that leads into the image folder is the same thing.
        File.CreateSymbolicLink(s.Path("alias"), images);
        Assert.Contains("inside the image folder", (await CliRunner.Run(["augment", .. Tiny.CliArgs(s.Path("alias", "w"), images)])).OneErrorLine());
    }

    static void InsideMLNet(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        var ml = new MLContext(seed: 1);
        var data = ImageFolderDataset.Load(ml, images);
        string cache = Path.Combine(images, "cache");
        var e = Assert.Throws<ArgumentException>(() => new DiffIIAugmentEstimator(Tiny.MLNet(cache, imageFolder: images)).Fit(data));
        Assert.Contains("inside the image folder", e.Message);
        Assert.False(Directory.Exists(cache));
    }

    // ---- CSVs ----

    static async Task CsvSameFile(Scratch s)
    {
        string images = Tiny.Folder(s.Path("img"), ("a", 2), ("b", 2));
        File.WriteAllText(s.Path("twice.csv"), "path,label\nimg/a/0.png,a\n./img/a/0.png,a\nimg/b/0.png,b\n");
        var line = (await CliRunner.Run(["learn", "--work", s.Path("w1"), "--csv", s.Path("twice.csv")])).OneErrorLine();
        Assert.Contains("line 3", line);
        Assert.Contains("line 2", line);
        File.CreateSymbolicLink(s.Path("img", "a", "same.png"), Path.Combine(images, "a", "1.png"));
        File.WriteAllText(s.Path("linked.csv"), "img/a/1.png,a\nimg/a/same.png,a\nimg/b/0.png,b\n");
        Assert.Contains("line 1", (await CliRunner.Run(["learn", "--work", s.Path("w2"), "--csv", s.Path("linked.csv")])).OneErrorLine());
    }

    static void SameFileTwiceMLNet(Scratch s)
    {
        string images = Tiny.Folder(s.Path("img"), ("a", 2), ("b", 2));
        var ml = new MLContext(seed: 1);
        IDataView Rows(params (string Label, string Path)[] rows) =>
            ml.Data.LoadFromEnumerable(rows.Select(r => new ImageFolderRow { Label = r.Label, ImagePath = r.Path }).ToList());
        var twice = Rows(("a", "a/0.png"), ("a", "a/1.png"), ("b", "b/0.png"), ("a", "a/./0.png"));
        var e = Assert.Throws<InvalidDataException>(() => new DiffIIAugmentEstimator(Tiny.MLNet(s.Path("c1"), imageFolder: images)).Fit(twice));
        Assert.Contains("Row 3 of the image column 'ImagePath' (a/./0.png) is the file of row 0", e.Message);
        Assert.Contains(Path.Combine(images, "a", "0.png"), e.Message);
        File.CreateSymbolicLink(Path.Combine(images, "a", "same.png"), Path.Combine(images, "a", "1.png"));
        var linked = Rows(("a", "a/1.png"), ("b", "b/0.png"), ("b", "b/1.png"), ("a", "a/same.png"));
        Assert.Contains("is the file of row 0", Assert.Throws<InvalidDataException>(() =>
            new DiffIIAugmentEstimator(Tiny.MLNet(s.Path("c2"), imageFolder: images)).Fit(linked)).Message);
    }

    static async Task CsvLateHeader(Scratch s)
    {
        Tiny.Folder(s.Path("img"), ("a", 2), ("b", 2));
        File.WriteAllText(s.Path("late.csv"), "\n\n  \npath,label\nimg/a/0.png,a\nimg/a/1.png,a\nimg/b/0.png,b\nimg/b/1.png,b\n");
        var run = await CliRunner.Run(["learn", "--work", s.Path("w"), "--csv", s.Path("late.csv"), "--model", s.Path("no-model")]);
        Assert.Contains("4 images in 2 classes", run.Stderr);
        Assert.Contains("no-model", run.OneErrorLine());
    }

    // ---- paths that are not what they should be ----

    static async Task NotAFolder(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        Assert.Contains("/dev/null is a character device, not a folder", (await CliRunner.Run(["augment", .. Tiny.CliArgs("/dev/null", images)])).OneErrorLine());
        File.WriteAllText(s.Path("file"), "x");
        Assert.Contains("is a regular file, not a folder", (await CliRunner.Run(["augment", .. Tiny.CliArgs(s.Path("file"), images)])).OneErrorLine());
        Directory.CreateDirectory(s.Path("suffixes"));
        string work = s.Path("work");
        var args = Tiny.CliArgs(work, images).ToList();
        int preset = args.IndexOf("--suffix-preset");
        args.RemoveRange(preset, 2);
        var line = (await CliRunner.Run(["augment", .. args, "--suffix-file", s.Path("suffixes")])).OneErrorLine();
        Assert.Contains($"--suffix-file {s.Path("suffixes")} is a folder", line);
        Directory.CreateDirectory(s.Path("model-out"));
        var experiment = (await CliRunner.Run(["experiment", .. Tiny.CliArgs(s.Path("xwork"), images), "--out", s.Path("model-out")])).OneErrorLine();
        Assert.Contains("--out", experiment);
        Assert.Contains("is an existing folder", experiment);
        Assert.False(Directory.Exists(s.Path("xwork")), "the refused experiment left its work folder");
    }

    static async Task TmpDir(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        File.WriteAllText(s.Path("not-a-dir"), "x");
        string? before = Environment.GetEnvironmentVariable("TMPDIR");
        Environment.SetEnvironmentVariable("TMPDIR", s.Path("not-a-dir"));
        CliResult run;
        try { run = await CliRunner.Run(["augment", .. Tiny.CliArgs(s.Path("work"), images)]); }
        finally { Environment.SetEnvironmentVariable("TMPDIR", before); }
        var line = run.OneErrorLine();
        Assert.Contains("TMPDIR", line);
        Assert.Contains("not-a-dir", line);
        Assert.False(Directory.Exists(s.Path("work")));
    }
}
