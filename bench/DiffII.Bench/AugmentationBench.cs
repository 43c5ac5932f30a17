using System.Diagnostics;
using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Diffusion.Pipelines;
using DiffII.Imaging;
using DiffII.Inversion;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>Step counts of the whole-method runs (small: the study is about how cost grows, not about image quality).</summary>
public sealed record AugmentationSettings(int ConceptSteps, int InversionSteps, int GenerationSteps, int BatchSize = 8);

/// <summary>
/// Full Diff-II runs (concept learning, inversion, two-stage generation, PNGs and manifest) through
/// <see cref="DiffIIAugmenter"/> on a model with random weights: how time and memory grow with classes, shots and
/// expansion rate, and whether memory stays flat over a long generation run.
/// </summary>
public sealed class AugmentationBench(StableDiffusion sd, string model, string scratch, BenchReport report, TextWriter log)
{
    static readonly string[] Suffixes = ["on a beach", "in the snow", "at night", "in a forest"];

    /// <summary>Random-noise PNGs at the model's size, <paramref name="shots"/> per class.</summary>
    List<LabeledImage> Images(int classes, int shots, long seed)
    {
        var images = new List<LabeledImage>();
        var g = new Generator((ulong)seed);
        for (int c = 0; c < classes; c++)
            for (int s = 0; s < shots; s++)
            {
                using var pixels = rand([3, sd.ImageSize, sd.ImageSize], generator: g) * 2 - 1;
                byte[] png = ImageCodec.ToPng(pixels);
                images.Add(new LabeledImage($"class{c:D2}/img{s:D2}.png", $"class{c:D2}", () => png));
            }
        g.Dispose();
        return images;
    }

    string Metaclass => model == "tiny" ? "shirt" : "bird";

    AugmentationOptions Options(int expansion, AugmentationSettings settings) => new()
    {
        Metaclass = Metaclass,
        Strategy = Strategy.DiffII,
        Budget = new SampleBudget.Expansion(expansion),
        Suffixes = Suffixes,
        Seed = 1,
        Concepts = new ConceptOptions { Steps = settings.ConceptSteps, BatchSize = settings.BatchSize, CheckpointEvery = int.MaxValue },
        Inversion = new InversionOptions { Steps = settings.InversionSteps, BatchSize = settings.BatchSize },
        Generation = new GenerationOptions { Steps = settings.GenerationSteps, BatchSize = settings.BatchSize },
    };

    /// <summary>One full run in a fresh work folder, timed per step.</summary>
    public ScalingPoint RunOnce(string axis, int classes, int shots, int expansion, AugmentationSettings settings)
    {
        string work = Path.Combine(scratch, $"aug-{classes}x{shots}x{expansion}-{Guid.NewGuid():N}");
        var images = Images(classes, shots, seed: classes * 1000 + shots);
        using var sampler = new ResidentSetSampler(TimeSpan.FromMilliseconds(20));
        double learn, invert, generate;
        int synthetic, inversions;
        using (var augmenter = new DiffIIAugmenter(sd, Options(expansion, settings), work))
        {
            var clock = Stopwatch.StartNew();
            augmenter.LearnConcepts(images);
            learn = clock.Elapsed.TotalSeconds;
            clock.Restart();
            augmenter.Fit(images);
            invert = clock.Elapsed.TotalSeconds;
            clock.Restart();
            synthetic = augmenter.Generate().Count;
            generate = clock.Elapsed.TotalSeconds;
            inversions = augmenter.Pool!.Count;
        }
        ResetModel();
        Directory.Delete(work, true);
        var point = new ScalingPoint
        {
            Axis = axis, Classes = classes, Shots = shots, Expansion = expansion, SyntheticImages = synthetic, Inversions = inversions,
            LearnSeconds = learn, InvertSeconds = invert, GenerateSeconds = generate, PeakRssBytes = sampler.Peak,
        };
        log.WriteLine($"  {axis,-9} {classes,3} classes × {shots,2} shots × {expansion,2}: {synthetic,4} images, {inversions,3} inversions; " +
                      $"learn {Format.Seconds(learn)}, invert {Format.Seconds(invert)}, generate {Format.Seconds(generate)}, peak RSS {Format.Bytes(point.PeakRssBytes)}");
        return point;
    }

    /// <summary>
    /// The augmenter merges its LoRA into the U-Net for generation and unmerges it when disposed (exact up to float
    /// rounding); the concept tokens stay in the vocabulary, which later runs reuse. Nothing else carries over.
    /// </summary>
    void ResetModel()
    {
        foreach (var (_, attention) in sd.Unet.Attentions()) attention.Adapters = null;
    }

    /// <summary>Scaling along three axes around a centre (4 classes, 5 shots, ×5 unless given); a line per axis.</summary>
    public void Scaling(int[] classCounts, int[] shotCounts, int[] expansions, AugmentationSettings settings, int centreClasses = 4, int centreShots = 5, int centreExpansion = 5)
    {
        log.WriteLine($"scaling ({model}, concept steps {settings.ConceptSteps}, inversion steps {settings.InversionSteps}, generation steps {settings.GenerationSteps})");
        // A throw-away run first, so the first point does not carry one-time costs (kernel selection, allocator growth).
        RunOnce("warm-up", 2, 2, 1, settings);
        foreach (int c in classCounts) report.Scaling.Add(RunOnce("classes", c, centreShots, centreExpansion, settings));
        foreach (int s in shotCounts) report.Scaling.Add(RunOnce("shots", centreClasses, s, centreExpansion, settings));
        foreach (int e in expansions) report.Scaling.Add(RunOnce("expansion", centreClasses, centreShots, e, settings));
        foreach (var axis in new[] { "classes", "shots", "expansion" })
        {
            var points = report.Scaling.Where(p => p.Axis == axis).ToList();
            if (points.Select(p => p.SyntheticImages).Distinct().Count() < 2) continue;
            var x = points.Select(p => (double)p.SyntheticImages).ToList();
            var fit = Statistics.Fit(x, points.Select(p => p.TotalSeconds).ToList());
            var generateFit = Statistics.Fit(x, points.Select(p => p.GenerateSeconds).ToList());
            double learnMean = points.Average(p => p.LearnSeconds);
            string reading = $"total ≈ {fit.Intercept:F2} s + {fit.Slope * 1000:F1} ms × images (R² {fit.RSquared:F3}); generation alone " +
                $"{generateFit.Slope * 1000:F1} ms/image (R² {generateFit.RSquared:F3}); concept learning is a fixed {learnMean:F2} s " +
                $"({settings.ConceptSteps} steps whatever the image count), which is the intercept";
            if (axis == "shots")
                reading += "; inversions grow with shots too (one per image, a mirror for 1-shot classes), and generation batches fill up only from 2 shots";
            report.ScalingFits.Add(new ScalingFit(axis, "synthetic images", "total seconds", fit, reading));
        }
    }

    /// <summary>
    /// A long generation run: RSS and live tensors sampled after every batch. Memory is flat when, after the first
    /// tenth (allocator warm-up), the RSS line rises less than 32 MiB over the run and the live tensor count ends
    /// within 16 of where it started: the manifest's entries (a few hundred bytes each) are the only state that
    /// should grow.
    /// </summary>
    public void MemoryFlatness(int targetImages, AugmentationSettings settings)
    {
        const int classes = 4, shots = 5;
        int expansion = (int)Math.Ceiling(targetImages / (double)(classes * shots));
        string work = Path.Combine(scratch, $"memory-{Guid.NewGuid():N}");
        var images = Images(classes, shots, seed: 42);
        var samples = new List<MemorySample>();
        using (var augmenter = new DiffIIAugmenter(sd, Options(expansion, settings), work))
        {
            augmenter.Fit(images);
            GC.Collect();
            var clock = Stopwatch.StartNew();
            augmenter.Generate(new Sampler(samples, clock));
        }
        ResetModel();
        Directory.Delete(work, true);

        var steady = samples.Where(s => s.Images >= samples[^1].Images / 10).ToList();
        var rss = Statistics.Fit(steady.Select(s => (double)s.Images).ToList(), steady.Select(s => (double)s.RssBytes).ToList());
        var live = Statistics.Fit(steady.Select(s => (double)s.Images).ToList(), steady.Select(s => (double)s.LiveTensors).ToList());
        int total = samples[^1].Images;
        double rssGrowth = rss.Slope * (total - steady[0].Images);
        long tensorGrowth = steady[^1].LiveTensors - steady[0].LiveTensors;
        bool pass = rssGrowth < 32 * (1 << 20) && Math.Abs(tensorGrowth) <= 16;
        report.Memory = new MemoryFlatnessResult
        {
            Images = total, BatchSize = settings.BatchSize, Steps = settings.GenerationSteps, Samples = samples,
            RssSlopeBytesPerImage = rss.Slope, LiveTensorSlopePerImage = live.Slope,
            LiveTensorsFirst = steady[0].LiveTensors, LiveTensorsLast = steady[^1].LiveTensors, Pass = pass,
            Criterion = "after the first tenth of the run: fitted RSS growth < 32 MiB over the run and live tensors end within 16 of their start",
        };
        log.WriteLine($"memory: {total} images, RSS slope {rss.Slope / 1024:F2} KiB/image, live tensors {steady[0].LiveTensors} → {steady[^1].LiveTensors}: {(pass ? "flat" : "NOT flat")}");
    }

    sealed class Sampler(List<MemorySample> samples, Stopwatch clock) : IProgress<AugmentationProgress>
    {
        public void Report(AugmentationProgress value)
        {
            if (value.Stage != "generate" || value.Done == 0) return;
            samples.Add(new MemorySample(value.Done, MemoryProbe.ResidentBytes(), MemoryProbe.LiveTensors(), clock.Elapsed.TotalSeconds));
        }
    }
}
