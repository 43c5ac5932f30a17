using System.Text.Json;
using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.MLNet;
using DiffII.MLNet.Data;
using DiffII.Reliability.Tests.Fixtures;
using DiffII.Reliability.Tests.Matrix;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.Reliability.Tests.Rows;

/// <summary>Datasets: odd shapes of a labelled image set, and label columns of every type ML.NET users have.</summary>
public static class DatasetRows
{
    const string EmptyClassWhen = "a class folder with no images";
    const string EmptyClassThen = "refused with an error naming the class and its folder";
    const string SingleWhen = "a class with one image";
    const string SingleThen = "augmented like the others: its mirror image gives it a second inversion to interpolate with";
    const string LabelThen = "synthetic rows carry the label in the column's own type and values";
    const string LabelWhen = "a label column of type String, Int32, Int64, UInt32, Int16, Byte or key (MapValueToKey)";
    const string IdenticalWhen = "two identical images in one class (the same bytes under two names)";
    const string IdenticalThen = "both used; interpolating between their identical inversions follows the degenerate-pair rule (no NaN, no failure)";
    const string UnicodeWhen = "non-ASCII class names and paths (café, 日本の鳥, ü.png)";
    const string UnicodeThen = "used as they are: names kept in the manifest and labels, output folders keep their letters";
    const string CollisionWhen = "class names that are the same after sanitising for file names (blue jay, blue/jay, blue?jay)";
    const string CollisionThen = "each class gets its own output folder (the class index leads the folder name)";

    public static IEnumerable<MatrixRow> All =>
    [
        new("dataset.empty-class.cli", Area.Datasets, Layer.Cli, EmptyClassWhen, EmptyClassThen, EmptyClassCli),
        MatrixRow.Sync("dataset.empty-class.mlnet", Area.Datasets, Layer.MLNet, EmptyClassWhen, EmptyClassThen, EmptyClassMLNet),
        new("dataset.single-image.library", Area.Datasets, Layer.Library, SingleWhen, SingleThen, SingleLibrary),
        new("dataset.single-image.mlnet", Area.Datasets, Layer.MLNet, SingleWhen, SingleThen, SingleMLNet),
        new("dataset.single-image.cli", Area.Datasets, Layer.Cli, SingleWhen, SingleThen, SingleCli),
        LabelRow<string>("string", ["cardinal", "jay"]),
        LabelRow<int>("int32", [3, -7]),
        LabelRow<long>("int64", [3_000_000_000L, 12]),
        LabelRow<uint>("uint32", [3u, 4_000_000_000u]),
        LabelRow<short>("int16", [(short)3, (short)-300]),
        LabelRow<byte>("byte", [(byte)3, (byte)250]),
        new("dataset.label-key.mlnet", Area.Datasets, Layer.MLNet, LabelWhen, LabelThen, KeyLabel),
        new("dataset.label-missing-key.mlnet", Area.Datasets, Layer.MLNet, "a key label column with missing values (labels outside the key's values)",
            "those rows are left out, as ML.NET trainers leave them out, and counted (SkippedRows); the others are augmented", MissingKeyLabel),
        new("dataset.label-float.mlnet", Area.Datasets, Layer.MLNet, "a Single (float) label column", "refused with an error naming the column, its type and what to do (map it to a key)", FloatLabel),
        MatrixRow.Sync("dataset.duplicate-id.library", Area.Datasets, Layer.Library, "the same image id twice", "refused with an error naming the id", DuplicateId),
        new("dataset.duplicate-csv-row.cli", Area.Datasets, Layer.Cli, "a CSV that lists the same file twice", "refused with an error naming the CSV line and the file", DuplicateCsvRow),
        new("dataset.identical-images.library", Area.Datasets, Layer.Library, IdenticalWhen, IdenticalThen, IdenticalLibrary),
        new("dataset.identical-images.cli", Area.Datasets, Layer.Cli, IdenticalWhen, IdenticalThen, IdenticalCli),
        new("dataset.unicode.library", Area.Datasets, Layer.Library, UnicodeWhen, UnicodeThen, UnicodeLibrary),
        new("dataset.unicode.mlnet", Area.Datasets, Layer.MLNet, UnicodeWhen, UnicodeThen, UnicodeMLNet),
        new("dataset.unicode.cli", Area.Datasets, Layer.Cli, UnicodeWhen, UnicodeThen, UnicodeCli),
        new("dataset.sanitised-collision.library", Area.Datasets, Layer.Library, CollisionWhen, CollisionThen, CollisionLibrary),
        new("dataset.sanitised-collision.cli", Area.Datasets, Layer.Cli, CollisionWhen, CollisionThen, CollisionCli),
        MatrixRow.Sync("dataset.1200-classes.library", Area.Datasets, Layer.Library, "1 200 classes",
            "one placeholder token per class, each unique and a single token of its prompt; unique sample ids and output folders", ManyClasses),
    ];

    // ---- an empty class ----

    static async Task EmptyClassCli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string empty = Path.Combine(images, "c");
        Directory.CreateDirectory(empty);
        File.WriteAllText(Path.Combine(empty, "notes.txt"), "not an image");
        var line = (await CliRunner.Run(["augment", .. Tiny.CliArgs(s.Path("work"), images)])).OneErrorLine();
        Assert.Contains("class 'c'", line);
        Assert.Contains(empty, line);
        Assert.Contains("has no images", line);
    }

    static void EmptyClassMLNet(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string empty = Path.Combine(images, "c");
        Directory.CreateDirectory(empty);
        var e = Assert.Throws<InvalidDataException>(() => ImageFolderDataset.Load(new MLContext(), images));
        Assert.Contains("'c'", e.Message);
        Assert.Contains(empty, e.Message);
        Assert.Contains("has no images", e.Message);
    }

    // ---- a class with one image ----

    static Task SingleLibrary(Scratch s)
    {
        using var sd = Tiny.Load();
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(), s.Path("work"));
        var synthetic = augmenter.Run(Tiny.Images(("a", 2), ("b", 1)));
        Assert.Equal(["b/0.png", "b/0.png#mirror"], augmenter.Pool!.IdsByClass[1].Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(2, synthetic.Count(i => i.ClassName == "b"));
        Assert.Empty(augmenter.Failures);
        return Task.CompletedTask;
    }

    static Task SingleMLNet(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 1));
        var fitted = new DiffIIAugmentEstimator(Tiny.MLNet(s.Path("cache"))).Fit(ImageFolderDataset.Load(new MLContext(seed: 1), images));
        Assert.Equal(2, fitted.SyntheticRows.Count(r => r.ClassName == "b"));
        Assert.Empty(fitted.Failures);
        return Task.CompletedTask;
    }

    static async Task SingleCli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 1));
        string work = s.Path("work");
        var run = await CliRunner.Run(["augment", .. Tiny.CliArgs(work, images, "--expansion", "2", "--json")]);
        run.AssertOk();
        using var json = JsonDocument.Parse(run.Stdout);
        var b = json.RootElement.GetProperty("classes").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "b");
        Assert.Equal(2, b.GetProperty("synthetic").GetInt32());
        Assert.Equal(0, json.RootElement.GetProperty("failures").GetArrayLength());
    }

    // ---- label column types (ML.NET) ----

    public sealed class TypedRow<T>
    {
        public string ImagePath { get; set; } = "";
        public T Label { get; set; } = default!;
    }

    static List<TypedRow<T>> TypedRows<T>(Scratch s, T[] labels)
    {
        string images = Tiny.Folder(s.Path("images"), ("first", 2), ("second", 2));
        return Directory.GetFiles(Path.Combine(images, "first")).Order(StringComparer.Ordinal).Select(p => new TypedRow<T> { ImagePath = p, Label = labels[0] })
            .Concat(Directory.GetFiles(Path.Combine(images, "second")).Order(StringComparer.Ordinal).Select(p => new TypedRow<T> { ImagePath = p, Label = labels[1] }))
            .ToList();
    }

    /// <summary>Real-Guidance (no concept learning) keeps these rows fast: the label handling is what they check.</summary>
    static DiffIIAugmentOptions LabelOptions(Scratch s) => Tiny.MLNet(s.Path("cache"), strategy: Strategy.RealGuidance) with { ExpansionRate = 1 };

    static MatrixRow LabelRow<T>(string key, T[] labels) where T : notnull =>
        new($"dataset.label-{key}.mlnet", Area.Datasets, Layer.MLNet, LabelWhen, LabelThen, s =>
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(TypedRows(s, labels));
            var output = new DiffIIAugmentEstimator(LabelOptions(s)).Fit(data).Transform(data);
            Assert.Equal(typeof(T) == typeof(string) ? typeof(ReadOnlyMemory<char>) : typeof(T), output.Schema["Label"].Type.RawType);
            var synthetic = output.GetColumn<T>("Label").Zip(output.GetColumn<bool>("IsSynthetic")).Where(p => p.Second).Select(p => p.First).ToList();
            if (typeof(T) == typeof(string))
                Assert.Equal(labels.Select(l => (string)(object)l).SelectMany(l => new[] { l, l }).Order(StringComparer.Ordinal), synthetic.Select(l => l.ToString()!).Order(StringComparer.Ordinal));
            else
                Assert.Equal(labels.SelectMany(l => new[] { l, l }).OrderBy(l => l), synthetic.OrderBy(l => l));
            return Task.CompletedTask;
        });

    static Task KeyLabel(Scratch s)
    {
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromEnumerable(TypedRows(s, new[] { "cardinal", "jay" }));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var output = new DiffIIAugmentEstimator(LabelOptions(s)).Fit(data).Transform(data);
        Assert.IsType<KeyDataViewType>(output.Schema["Label"].Type);
        var synthetic = output.GetColumn<uint>("Label").Zip(output.GetColumn<bool>("IsSynthetic")).Where(p => p.Second).Select(p => p.First).Order().ToArray();
        Assert.Equal([1u, 1u, 2u, 2u], synthetic);
        VBuffer<ReadOnlyMemory<char>> names = default;
        output.Schema["Label"].GetKeyValues(ref names);
        Assert.Equal(["cardinal", "jay"], names.DenseValues().Select(n => n.ToString()).ToArray());
        return Task.CompletedTask;
    }

    public sealed class LabelTerm
    {
        public string Label { get; set; } = "";
    }

    static Task MissingKeyLabel(Scratch s)
    {
        var ml = new MLContext(seed: 1);
        var rows = TypedRows(s, new[] { "cardinal", "jay" });
        rows[^1].Label = "unlabelled";
        var raw = ml.Data.LoadFromEnumerable(rows);
        var known = ml.Data.LoadFromEnumerable(new[] { new LabelTerm { Label = "cardinal" }, new LabelTerm { Label = "jay" } });
        var data = ml.Transforms.Conversion.MapValueToKey("Label", keyData: known).Fit(raw).Transform(raw);
        var fitted = new DiffIIAugmentEstimator(LabelOptions(s)).Fit(data);
        Assert.Equal(1, fitted.SkippedRows);
        Assert.Equal(["cardinal", "cardinal", "jay"], fitted.SyntheticRows.Select(r => r.ClassName).Order(StringComparer.Ordinal).ToArray());
        return Task.CompletedTask;
    }

    static Task FloatLabel(Scratch s)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TypedRows(s, new[] { 1f, 2f }));
        var e = Assert.ThrowsAny<ArgumentException>(() => new DiffIIAugmentEstimator(LabelOptions(s)).Fit(data));
        Assert.Contains("'Label'", e.Message);
        Assert.Contains("Single", e.Message);
        Assert.Contains("map it to a key", e.Message);
        return Task.CompletedTask;
    }

    // ---- duplicates ----

    static void DuplicateId(Scratch s)
    {
        using var sd = Tiny.Load();
        var images = Tiny.Images(("a", 2), ("b", 2));
        images.Add(images[0]);
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(), s.Path("work"));
        var e = Assert.Throws<ArgumentException>(() => augmenter.Fit(images));
        Assert.Contains("'a/0.png'", e.Message);
        Assert.Contains("2 times", e.Message);
    }

    static async Task DuplicateCsvRow(Scratch s)
    {
        string images = Tiny.Folder(s.Path("data"), ("a", 2), ("b", 2));
        string csv = s.Path("data", "labels.csv");
        File.WriteAllLines(csv, ["path,label", "a/0.png,a", "a/1.png,a", "b/0.png,b", "b/1.png,b", "a/1.png,a"]);
        var args = Tiny.CliArgs(s.Path("work"), images).ToList();
        args[args.IndexOf("--images")] = "--csv";
        args[args.IndexOf(images)] = csv;
        var line = (await CliRunner.Run(["augment", .. args])).OneErrorLine();
        Assert.Contains(csv + ", line 6", line);
        Assert.Contains("a/1.png", line);
        Assert.Contains("listed twice", line);
    }

    static Task IdenticalLibrary(Scratch s)
    {
        using var sd = Tiny.Load();
        byte[] same = Tiny.Picture(0, 0);
        var images = new List<LabeledImage> { new("a/0.png", "a", () => same), new("a/copy-of-0.png", "a", () => same) };
        images.AddRange(Tiny.Images(("b", 2)).Select(i => i with { Label = "b", Id = "b/" + i.Id }));
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(), s.Path("work"));
        var synthetic = augmenter.Run(images);
        Assert.True(augmenter.Pool!["a/0.png"].eq(augmenter.Pool["a/copy-of-0.png"]).all().item<bool>(), "identical images must invert identically");
        Assert.Equal(4, synthetic.Count(i => i.ClassName == "a"));
        Assert.Empty(augmenter.Failures);
        return Task.CompletedTask;
    }

    static async Task IdenticalCli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 1), ("b", 2));
        File.Copy(Path.Combine(images, "a", "0.png"), Path.Combine(images, "a", "copy.png"));
        string work = s.Path("work");
        var run = await CliRunner.Run(["augment", .. Tiny.CliArgs(work, images, "--expansion", "2", "--json")]);
        run.AssertOk();
        using var json = JsonDocument.Parse(run.Stdout);
        Assert.Equal(8, json.RootElement.GetProperty("synthetic").GetInt32());
        Assert.Equal(0, json.RootElement.GetProperty("failures").GetArrayLength());
    }

    // ---- names: non-ASCII, and names that collide once sanitised ----

    static readonly string[] UnicodeClasses = ["café", "日本の鳥"];

    static string UnicodeFolder(Scratch s)
    {
        string root = s.Path("données", "images");
        for (int c = 0; c < UnicodeClasses.Length; c++)
        {
            Directory.CreateDirectory(Path.Combine(root, UnicodeClasses[c]));
            File.WriteAllBytes(Path.Combine(root, UnicodeClasses[c], "ü.png"), Tiny.Picture(c, 0));
            File.WriteAllBytes(Path.Combine(root, UnicodeClasses[c], "ß-2.png"), Tiny.Picture(c, 1));
        }
        return root;
    }

    static void AssertUnicodeOutputs(string work)
    {
        var manifest = File.ReadAllLines(Path.Combine(work, "manifest.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(UnicodeClasses, manifest.Select(e => e.GetProperty("class").GetString()!).Distinct().Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(["0000-café", "0001-日本の鳥"], Directory.GetDirectories(Path.Combine(work, "synthetic")).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToArray());
    }

    static Task UnicodeLibrary(Scratch s)
    {
        string root = UnicodeFolder(s);
        var images = UnicodeClasses.SelectMany(c => Directory.GetFiles(Path.Combine(root, c)).Select(f => LabeledImage.FromFile(f, c))).ToList();
        using var sd = Tiny.Load();
        string work = s.Path("travail-é");
        using (var augmenter = new DiffIIAugmenter(sd, Tiny.Options(), work)) Assert.Equal(8, augmenter.Run(images).Count);
        AssertUnicodeOutputs(work);
        return Task.CompletedTask;
    }

    static Task UnicodeMLNet(Scratch s)
    {
        string root = UnicodeFolder(s);
        var ml = new MLContext(seed: 1);
        var data = ImageFolderDataset.Load(ml, root);
        string cache = s.Path("cache-é");
        var output = new DiffIIAugmentEstimator(Tiny.MLNet(cache)).Fit(data).Transform(data);
        var synthetic = output.GetColumn<string>("Label").Zip(output.GetColumn<bool>("IsSynthetic")).Where(p => p.Second).Select(p => p.First).ToList();
        Assert.Equal(UnicodeClasses.SelectMany(c => Enumerable.Repeat(c, 4)).Order(StringComparer.Ordinal), synthetic.Order(StringComparer.Ordinal));
        AssertUnicodeOutputs(cache);
        return Task.CompletedTask;
    }

    static async Task UnicodeCli(Scratch s)
    {
        string root = UnicodeFolder(s);
        string work = s.Path("travail-é");
        (await CliRunner.Run(["augment", .. Tiny.CliArgs(work, root, "--expansion", "2")])).AssertOk();
        AssertUnicodeOutputs(work);
    }

    static readonly string[] CollidingClasses = ["blue jay", "blue/jay", "blue?jay"];

    static void AssertSeparateFolders(string work)
    {
        var folders = Directory.GetDirectories(Path.Combine(work, "synthetic")).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["0000-blue_jay", "0001-blue_jay", "0002-blue_jay"], folders);
        foreach (var line in File.ReadAllLines(Path.Combine(work, "manifest.jsonl")))
        {
            var e = JsonDocument.Parse(line).RootElement;
            int index = Array.IndexOf(CollidingClasses.Order(StringComparer.Ordinal).ToArray(), e.GetProperty("class").GetString());
            Assert.StartsWith($"synthetic/{index:D4}-", e.GetProperty("file").GetString());
        }
    }

    static Task CollisionLibrary(Scratch s)
    {
        var images = CollidingClasses.SelectMany((c, ci) => Enumerable.Range(0, 2).Select(k =>
        {
            byte[] bytes = Tiny.Picture(ci, k);
            return new LabeledImage($"{ci}-{k}.png", c, () => bytes);
        })).ToList();
        using var sd = Tiny.Load();
        string work = s.Path("work");
        using (var augmenter = new DiffIIAugmenter(sd, Tiny.Options(expansion: 1), work)) augmenter.Run(images);
        AssertSeparateFolders(work);
        return Task.CompletedTask;
    }

    static async Task CollisionCli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("data"), ("x", 2), ("y", 2), ("z", 2));
        string csv = s.Path("data", "labels.csv");
        File.WriteAllLines(csv, ["path,label", "x/0.png,blue jay", "x/1.png,blue jay", "y/0.png,blue/jay", "y/1.png,blue/jay", "z/0.png,blue?jay", "z/1.png,blue?jay"]);
        string work = s.Path("work");
        var args = Tiny.CliArgs(work, images, "--expansion", "1").ToList();
        args[args.IndexOf("--images")] = "--csv";
        args[args.IndexOf(images)] = csv;
        (await CliRunner.Run(["augment", .. args])).AssertOk();
        AssertSeparateFolders(work);
    }

    // ---- 1 200 classes, set up without training them ----

    static void ManyClasses(Scratch s)
    {
        const int count = 1200;
        using var sd = Tiny.Load();
        var names = Enumerable.Range(0, count).Select(i => i % 3 == 0 ? $"class {i}" : i % 3 == 1 ? $"class/{i - 1}" : $"class?{i - 2}").ToList();
        var concepts = LearnedConcepts.Initialise(sd, names, "bird");
        using (concepts.ApplyTo(sd))
        {
            Assert.Equal(count, concepts.Tokens.Distinct().Count());
            var ids = new HashSet<int>();
            var plain = sd.Tokenizer.Encode("a photo of a bird");
            for (int c = 0; c < count; c++)
            {
                var prompt = sd.Tokenizer.Encode(concepts.Prompt(c));
                Assert.True(prompt.Count == plain.Count + 1, $"the prompt of class {c} has {prompt.Count} tokens; the placeholder must be one token");
                Assert.True(sd.Tokenizer.TryGetTokenId(concepts.Tokens[c], out int id) && prompt.Contains(id), $"class {c}'s placeholder is not its own token");
                Assert.True(ids.Add(id), $"class {c} shares token id {id}");
            }
        }
        var classes = names.Select((n, i) => new ClassImages(n, [$"{i}.png"])).ToList();
        var plan = SamplePlanner.Plan(classes, new PlanOptions { Strategy = Strategy.TwoStageOnly, Budget = new SampleBudget.Expansion(2), Suffixes = Tiny.Suffixes, Seed = 1 });
        Assert.Equal(2 * count, plan.Select(p => p.Id).Distinct().Count());
        Assert.Equal(count, names.Select((n, i) => DiffII.Storage.WorkFolder.SafeFolderName(i, n)).Distinct().Count());
    }
}
