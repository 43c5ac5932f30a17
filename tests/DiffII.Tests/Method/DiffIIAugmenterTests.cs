using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Inversion;
using SkiaSharp;

namespace DiffII.Tests.Method;

public sealed class DiffIIAugmenterTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-aug-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    static AugmentationOptions Options(Strategy strategy = Strategy.DiffII) => new()
    {
        Metaclass = "bird",
        Strategy = strategy,
        Budget = new SampleBudget.Expansion(2),
        SplitRatio = 0.5,
        Suffixes = ["standing on a branch.", "flying over water."],
        Concepts = new ConceptOptions { Steps = 4, BatchSize = 2, LoraRank = 2, CheckpointEvery = 2 },
        Inversion = new InversionOptions { Steps = 4, BatchSize = 2 },
        Generation = new GenerationOptions { Steps = 4, GuidanceScale = 7.5, BatchSize = 3 },
        Seed = 11,
    };

    static readonly List<LabeledImage> Images = TinyGenerator.Images(("cardinal", 2), ("jay", 2), ("owl", 1));

    [Fact]
    public void DiffII_RunsTheWholeChain_WithCompleteProvenance_AndASingleImageClass()
    {
        using var sd = TinyGenerator.Load();
        using var augmenter = new DiffIIAugmenter(sd, Options(), Path.Combine(_root, "run"));
        var stages = new HashSet<string>();
        long outsideScopes = TorchSharp.DisposeScopeManager.Statistics.CreatedOutsideScopeCount;
        var synthetic = augmenter.Run(Images, new SyncProgress<AugmentationProgress>(p => stages.Add(p.Stage)));
        // Every tensor of the whole chain was made inside a scope (HeldTensors), so none could be finalized mid-call.
        Assert.Equal(outsideScopes, TorchSharp.DisposeScopeManager.Statistics.CreatedOutsideScopeCount);

        Assert.Equal(["generate", "invert", "learn"], stages.Order().ToArray());
        Assert.Equal(10, synthetic.Count); // 2 × (2 + 2 + 1)
        Assert.Equal([4, 4, 2], new[] { "cardinal", "jay", "owl" }.Select(c => synthetic.Count(s => s.ClassName == c)).ToArray());
        Assert.Equal(["owl-0.png", "owl-0.png#mirror"], augmenter.Pool!.IdsByClass[2].Order().ToArray());
        foreach (var s in synthetic)
        {
            var e = s.Provenance;
            using var bmp = SKBitmap.Decode(s.ImagePath);
            Assert.Equal(16, bmp.Width);
            Assert.Equal(2, e.Sources.Count);
            Assert.All(e.Sources, src => Assert.StartsWith(s.ClassName + "-", src));
            Assert.InRange(e.Phi!.Value, 0, 2 * Math.PI);
            Assert.Contains(e.Suffix, Options().Suffixes);
            int c = e.ClassIndex;
            Assert.Equal($"a photo of a <class_{c}> bird", e.Prompt);
            Assert.Equal($"a photo of a <class_{c}> bird {e.Suffix}", e.SuffixPrompt);
            Assert.Equal("diff-ii", e.Strategy);
            Assert.Equal(4, e.Steps);
            Assert.Equal(7.5, e.Guidance);
            Assert.Single(e.Labels);
        }
        Assert.Equal(10, File.ReadAllLines(augmenter.ManifestPath).Length);
        Assert.Empty(augmenter.Failures);
    }

    // Stopping and resuming each stage (byte-identical to an uninterrupted run) is in the reliability matrix
    // (tests/DiffII.Reliability.Tests, rows fault.cancel-*).

    [Theory]
    [InlineData(Strategy.RealGuidance)]
    [InlineData(Strategy.DAFusion)]
    [InlineData(Strategy.DiffMix)]
    [InlineData(Strategy.TwoStageOnly)]
    public void Baselines_ShareTheParts_AndRecordTheirOwnProvenance(Strategy strategy)
    {
        using var sd = TinyGenerator.Load();
        using var augmenter = new DiffIIAugmenter(sd, Options(strategy), Path.Combine(_root, strategy.Name()));
        var synthetic = augmenter.Run(Images);
        Assert.Equal(10, synthetic.Count);
        Assert.All(synthetic, s => Assert.Equal(strategy.Name(), s.Provenance.Strategy));
        if (strategy == Strategy.RealGuidance)
        {
            Assert.Null(augmenter.Concepts);
            Assert.All(synthetic, s => Assert.Equal($"a photo of a {s.ClassName}", s.Provenance.Prompt));
        }
        if (strategy == Strategy.DAFusion) Assert.Null(augmenter.Concepts!.LoraWeights);
        if (strategy == Strategy.DiffMix)
            Assert.All(synthetic, s => Assert.Equal(2, s.Labels.Count));
        if (strategy == Strategy.TwoStageOnly)
            Assert.All(synthetic, s => { Assert.Empty(s.Provenance.Sources); Assert.NotNull(s.Provenance.Suffix); });
    }

    [Fact]
    public void AWorkFolderMadeForOtherImages_IsRefused_AndASecondRunInTheSameFolderIsLockedOut()
    {
        using var sd = TinyGenerator.Load();
        string folder = Path.Combine(_root, "guarded");
        using (var a = new DiffIIAugmenter(sd, Options(Strategy.RealGuidance), folder))
        {
            a.Fit(Images);
            Assert.Throws<DiffII.Storage.WorkFolderInUseException>(() => new DiffIIAugmenter(sd, Options(Strategy.RealGuidance), folder));
        }
        using var b = new DiffIIAugmenter(sd, Options(Strategy.RealGuidance), folder);
        var e = Assert.Throws<InvalidOperationException>(() => b.Fit(Images.Take(3).ToList()));
        Assert.Contains("different images", e.Message);
    }

    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
