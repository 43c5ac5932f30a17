using DiffII.Imaging;
using DiffII.Storage;
using DiffII.TinyWorld;
using static TorchSharp.torch;

namespace DiffII.Experiments.Tiny;

/// <summary>One rendered picture of the experiment, written as a PNG: its class, the Fashion-MNIST item and the scene.</summary>
public sealed record WorldImage(string Path, string ClassName, int ItemIndex, Scene Scene);

/// <summary>
/// The data sets of the tiny experiment, rendered as PNG files so that every method and the classifier read real
/// image files, exactly as a user's folder would be read:
/// <list type="bullet">
/// <item>the few-shot training set: K items per class from the training split, in the narrow context
/// (<see cref="SceneDistribution.FewShot"/>: plain, dark or light backgrounds, centred);</item>
/// <item>the in-distribution test set: test-split items in the same narrow context;</item>
/// <item>the shifted test set: the same test items in contexts the few-shot set never shows
/// (<see cref="SceneDistribution.Shifted"/>: patterned, coloured backgrounds), the Waterbirds-style OOD test;</item>
/// <item>the reference set for faithfulness: many training-split items in every context, for a classifier trained
/// on plenty of real data.</item>
/// </list>
/// Every draw depends only on its seed, so a rerun renders byte-identical files (and skips files already there).
/// </summary>
public sealed class FewShotWorld(FashionMnist train, FashionMnist test, string folder)
{
    public string Folder { get; } = System.IO.Path.GetFullPath(folder);
    public static IReadOnlyList<string> Classes => FashionMnist.ClassNames;

    /// <summary>K items per class from the training split, drawn by <paramref name="seed"/>, in the narrow context.</summary>
    public IReadOnlyList<WorldImage> FewShot(int shots, long seed) =>
        Render(train, PickPerClass(train, shots, seed, exclude: null), SceneDistribution.FewShot, seed, $"few-shot/k{shots}-seed{seed}");

    /// <summary>The first <paramref name="perClass"/> test-split items of each class (a fixed seed), in the narrow context.</summary>
    public IReadOnlyList<WorldImage> InDistributionTest(int perClass) =>
        Render(test, PickPerClass(test, perClass, TestSeed, exclude: null), SceneDistribution.FewShot, TestSeed, $"test-in-distribution-{perClass}");

    /// <summary>The same test items as <see cref="InDistributionTest"/>, in the shifted contexts.</summary>
    public IReadOnlyList<WorldImage> ShiftedTest(int perClass) =>
        Render(test, PickPerClass(test, perClass, TestSeed, exclude: null), SceneDistribution.Shifted, TestSeed + 1, $"test-shifted-{perClass}");

    /// <summary>Training-split items in every context, for the reference classifier of the faithfulness measure.</summary>
    /// <param name="exclude">Items not to use (the few-shot items, so the reference never saw them).</param>
    public IReadOnlyList<WorldImage> Reference(int perClass, IReadOnlySet<int> exclude) =>
        Render(train, PickPerClass(train, perClass, ReferenceSeed, exclude), SceneDistribution.Everything, ReferenceSeed, $"reference-{perClass}");

    const long TestSeed = 7001, ReferenceSeed = 7101;

    static List<(int Label, int Item)> PickPerClass(FashionMnist set, int perClass, long seed, IReadOnlySet<int>? exclude) =>
        FewShotItems.Pick(set, perClass, seed, exclude);

    IReadOnlyList<WorldImage> Render(FashionMnist set, List<(int Label, int Item)> items, SceneDistribution scenes, long seed, string subfolder)
    {
        var images = new List<WorldImage>(items.Count);
        foreach (var (label, item) in items)
        {
            // Each picture's scene comes from its own seed, so adding or removing items never changes the others.
            var random = new Random(unchecked((int)(seed * 7919 + item)));
            var scene = scenes.Sample(random);
            string path = System.IO.Path.Combine(Folder, subfolder, Classes[label], $"{item:D5}.png");
            if (!File.Exists(path))
            {
                using var scope = NewDisposeScope();
                var sample = new TinyWorldSample(item, label, scene, SceneRenderer.Render(set.Item(item), scene));
                AtomicFile.WriteAllBytes(path, ImageCodec.ToPng(TinyWorldData.ToTensor([sample])[0]));
            }
            images.Add(new WorldImage(path, Classes[label], item, scene));
        }
        return images;
    }
}
