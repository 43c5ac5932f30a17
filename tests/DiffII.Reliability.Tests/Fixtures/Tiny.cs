using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Diffusion.Pipelines;
using DiffII.Inversion;
using DiffII.MLNet;
using SkiaSharp;

namespace DiffII.Reliability.Tests.Fixtures;

/// <summary>
/// The diffusers-made sd-tiny-a model (random weights, 16-px images) with 2 steps per stage, so a whole run takes
/// seconds on a CPU; and small labelled pictures for it.
/// </summary>
public static class Tiny
{
    public static string ModelPath => SharedData.TinyA();

    public static StableDiffusion Load() => StableDiffusion.Load(ModelPath);

    public static readonly string[] Suffixes = ["standing on a branch.", "flying over water."];

    public static AugmentationOptions Options(Strategy strategy = Strategy.DiffII, double expansion = 2, int generationBatch = 3, int learnSteps = 2) => new()
    {
        Metaclass = "bird",
        Strategy = strategy,
        Budget = new SampleBudget.Expansion(expansion),
        SplitRatio = 0.5,
        Suffixes = Suffixes,
        Concepts = new ConceptOptions { Steps = learnSteps, BatchSize = 2, LoraRank = 2, CheckpointEvery = 2 },
        Inversion = new InversionOptions { Steps = 2, BatchSize = 1 },
        Generation = new GenerationOptions { Steps = 2, GuidanceScale = 7.5, BatchSize = generationBatch },
        Seed = 11,
    };

    public static DiffIIAugmentOptions MLNet(string cache, string imageColumn = "ImagePath", Strategy strategy = Strategy.DiffII, string? imageFolder = null) => new()
    {
        LabelColumnName = "Label",
        ImageColumnName = imageColumn,
        ImageFolder = imageFolder,
        GeneratorPath = ModelPath,
        Metaclass = "bird",
        Strategy = strategy,
        ExpansionRate = 2,
        SplitRatio = 0.5,
        Suffixes = Suffixes,
        Concepts = new ConceptOptions { Steps = 2, BatchSize = 2, LoraRank = 2, CheckpointEvery = 2 },
        Inversion = new InversionOptions { Steps = 2, BatchSize = 2 },
        Generation = new GenerationOptions { Steps = 2, GuidanceScale = 7.5, BatchSize = 3 },
        Seed = 11,
        CacheFolder = cache,
    };

    static readonly SKColor[] Colours = [SKColors.Red, SKColors.Blue, SKColors.Green, SKColors.Orange, SKColors.Purple];

    /// <summary>A 16×16 PNG in the class's colour with a white square whose place depends on <paramref name="k"/>.</summary>
    public static byte[] Picture(int classIndex, int k, int size = 16)
    {
        using var bmp = new SKBitmap(size, size);
        bmp.Erase(Colours[classIndex % Colours.Length]);
        int s = Math.Max(1, size / 3);
        for (int y = 0; y < s; y++) for (int x = 0; x < s; x++) bmp.SetPixel((x + 2 * k + 1) % size, (y + k + 1) % size, SKColors.White);
        return ImageFiles.Png(bmp);
    }

    public static List<LabeledImage> Images(params (string Label, int Count)[] classes)
    {
        var images = new List<LabeledImage>();
        for (int c = 0; c < classes.Length; c++)
            for (int k = 0; k < classes[c].Count; k++)
            {
                byte[] bytes = Picture(c, k);
                images.Add(new LabeledImage($"{classes[c].Label}/{k}.png", classes[c].Label, () => bytes));
            }
        return images;
    }

    /// <summary>One sub-folder per class of <see cref="Picture"/> PNGs; returns <paramref name="root"/>.</summary>
    public static string Folder(string root, params (string Label, int Count)[] classes)
    {
        for (int c = 0; c < classes.Length; c++)
        {
            string folder = Path.Combine(root, classes[c].Label);
            Directory.CreateDirectory(folder);
            for (int k = 0; k < classes[c].Count; k++) File.WriteAllBytes(Path.Combine(folder, $"{k}.png"), Picture(c, k));
        }
        return root;
    }

    /// <summary>The CLI options of a tiny run (the model, 2–4 steps per stage, the same suffixes as <see cref="Options"/>).</summary>
    /// <remarks>An option in <paramref name="extra"/> replaces its default here.</remarks>
    public static string[] CliArgs(string work, string images, params string[] extra)
    {
        string[] defaults =
        [
            "--work", work, "--images", images, "--model", ModelPath, "--metaclass", "bird", "--suffix-preset", "cub-5shot",
            "--learn-steps", "2", "--lora-rank", "2", "--batch", "2", "--inversion-steps", "2", "--sample-steps", "2",
        ];
        var args = new List<string>();
        for (int i = 0; i < defaults.Length; i += 2)
            if (!extra.Contains(defaults[i])) args.AddRange([defaults[i], defaults[i + 1]]);
        return [.. args, .. extra];
    }
}
