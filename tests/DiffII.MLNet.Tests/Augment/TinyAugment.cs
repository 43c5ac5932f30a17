using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Inversion;
using DiffII.MLNet.Data;
using Microsoft.ML;
using SkiaSharp;

namespace DiffII.MLNet.Tests.Augment;

/// <summary>
/// A tiny image-folder dataset (one sub-folder per class; classes of 2, 2 and 1 images) and Diff-II options for the
/// sd-tiny-a model (random weights, 16-px images) with a few steps per stage, so a fit takes seconds. The Diff-II fit
/// on the path column is made once and shared by the tests that only read it.
/// </summary>
public sealed class TinyAugment : IDisposable
{
    public static readonly (string Name, SKColor Colour, int Count)[] Classes =
        [("blue", new SKColor(30, 60, 220), 2), ("green", new SKColor(30, 180, 40), 2), ("red", new SKColor(220, 30, 30), 1)];

    public string Root { get; } = Directory.CreateTempSubdirectory("diffii-mlnet-augment-").FullName;
    public string TrainFolder => Path.Combine(Root, "train");
    public string TestFolder => Path.Combine(Root, "test");
    public MLContext Ml { get; } = new(seed: 1);

    public TinyAugment()
    {
        DrawFolder(TrainFolder, Classes.Select(c => c.Count).ToArray(), seed: 1);
        DrawFolder(TestFolder, [2, 2, 2], seed: 2);
        Train = ImageFolderDataset.Load(Ml, TrainFolder);
        PathFit = new DiffIIAugmentEstimator(Options(Path.Combine(Root, "cache-path"))).Fit(Train);
    }

    /// <summary>The training images: columns Label (String) and ImagePath (absolute String).</summary>
    public IDataView Train { get; }

    /// <summary>Diff-II fitted on <see cref="Train"/>'s path column, expansion 2.</summary>
    public DiffIIAugmentTransformer PathFit { get; }

    public static DiffIIAugmentOptions Options(string cacheFolder, Strategy strategy = Strategy.DiffII, string imageColumn = "ImagePath") => new()
    {
        LabelColumnName = "Label",
        ImageColumnName = imageColumn,
        GeneratorPath = SharedData.TinyA(),
        Metaclass = "shape",
        Strategy = strategy,
        ExpansionRate = 2,
        SplitRatio = 0.5,
        Suffixes = ["on a table.", "in the sky."],
        Concepts = new ConceptOptions { Steps = 4, BatchSize = 2, LoraRank = 2, CheckpointEvery = 2 },
        Inversion = new InversionOptions { Steps = 4, BatchSize = 4 },
        Generation = new GenerationOptions { Steps = 4, GuidanceScale = 7.5, BatchSize = 4 },
        Seed = 3,
        CacheFolder = cacheFolder,
    };

    /// <summary>Solid-colour 24-px squares with a lighter disc at a random place: one sub-folder per class.</summary>
    public static void DrawFolder(string folder, int[] counts, int seed)
    {
        var random = new Random(seed);
        for (int c = 0; c < Classes.Length; c++)
        {
            string classFolder = Path.Combine(folder, Classes[c].Name);
            Directory.CreateDirectory(classFolder);
            for (int k = 0; k < counts[c]; k++)
            {
                using var bitmap = new SKBitmap(24, 24);
                using (var canvas = new SKCanvas(bitmap))
                {
                    canvas.Clear(Classes[c].Colour);
                    using var paint = new SKPaint { Color = new SKColor(240, 240, 240), IsAntialias = true };
                    canvas.DrawCircle(6 + random.Next(12), 6 + random.Next(12), 4, paint);
                }
                using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(classFolder, $"{k:D2}.png"), png.ToArray());
            }
        }
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

[CollectionDefinition(Name)]
public sealed class TinyAugmentCollection : ICollectionFixture<TinyAugment>
{
    public const string Name = "DiffIIAugment fitted with sd-tiny-a";
}
