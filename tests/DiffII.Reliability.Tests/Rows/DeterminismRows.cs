using DiffII.MLNet;
using DiffII.MLNet.Data;
using DiffII.Reliability.Tests.Fixtures;
using DiffII.Reliability.Tests.Matrix;
using Microsoft.ML;

namespace DiffII.Reliability.Tests.Rows;

/// <summary>Determinism: the same seed on the CPU gives byte-identical concepts, inversions, images and manifest.</summary>
public static class DeterminismRows
{
    const string When = "the same data, options and seed run twice on the CPU (model loaded afresh each time)";
    const string Then = "byte-identical images, manifest, learned concepts and inversion pools";

    public static IEnumerable<MatrixRow> All =>
    [
        MatrixRow.Sync("determinism.same-seed.library", Area.Determinism, Layer.Library, When, Then + " (and another seed gives other images)", Library),
        MatrixRow.Sync("determinism.same-seed.mlnet", Area.Determinism, Layer.MLNet, When, Then, MLNet),
        new("determinism.same-seed.cli", Area.Determinism, Layer.Cli, When, Then, Cli),
    ];

    static void Library(Scratch s)
    {
        var images = Tiny.Images(("a", 2), ("b", 1));
        foreach (var (folder, seed) in new[] { ("first", 11L), ("second", 11L), ("other-seed", 12L) })
        {
            using var sd = Tiny.Load();
            using var augmenter = new DiffIIAugmenter(sd, Tiny.Options() with { Seed = seed }, s.Path(folder));
            augmenter.Run(images);
        }
        Outputs.AssertSameResults(s.Path("first"), s.Path("second"));
        // Guards the comparison itself: were the images constant, any two runs would agree.
        var first = Outputs.Results(s.Path("first"));
        var other = Outputs.Results(s.Path("other-seed"));
        Assert.Contains(first, kv => kv.Key.EndsWith(".png", StringComparison.Ordinal) && !kv.Value.AsSpan().SequenceEqual(other[kv.Key]));
    }

    static void MLNet(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 1));
        var rows = new List<IReadOnlyList<SyntheticRowValue>>();
        foreach (string cache in new[] { s.Path("first"), s.Path("second") })
        {
            var data = ImageFolderDataset.Load(new MLContext(seed: 1), images);
            var fitted = new DiffIIAugmentEstimator(Tiny.MLNet(cache)).Fit(data);
            rows.Add(fitted.SyntheticRows.Select(r => r with { ImagePath = Path.GetRelativePath(cache, r.ImagePath) }).ToList());
        }
        Assert.Equal(rows[0], rows[1]);
        Outputs.AssertSameResults(s.Path("first"), s.Path("second"));
    }

    static async Task Cli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 1));
        foreach (string work in new[] { s.Path("first"), s.Path("second") })
            (await CliRunner.Run(["augment", .. Tiny.CliArgs(work, images, "--expansion", "2", "--quiet")])).AssertOk();
        Outputs.AssertSameResults(s.Path("first"), s.Path("second"));
    }
}
