using System.Diagnostics;
using System.Security.Cryptography;
using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Denoising;
using DiffII.Diffusion.Lora;
using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Runtime;
using DiffII.Imaging;
using DiffII.Inversion;
using DiffII.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII;

/// <summary>
/// The Diff-II method as one object: Fit learns the class concepts (step 1) and builds the inversion pools
/// (step 2a); Generate interpolates inversions (step 2b) and denoises them in two stages (step 3), or runs the
/// chosen baseline. Everything lands in a work folder — concepts, pools, PNGs and a manifest — so each step is done
/// once, an interrupted run resumes with exactly the missing work, and the same seed gives the same images.
/// </summary>
public sealed class DiffIIAugmenter : IDisposable
{
    readonly StableDiffusion _sd;
    readonly AugmentationOptions _options;
    readonly WorkFolder _work;
    List<ClassImages>? _classes;
    Dictionary<string, LabeledImage>? _images;
    LearnedConcepts? _concepts;
    UNetLora? _appliedLora;
    InversionPool? _pool;
    readonly List<GenerationFailure> _failures = [];

    /// <param name="heldLock">The work folder's lock when the caller already holds it (a tool that writes its own files
    /// there first); the augmenter then uses it and leaves releasing it to the caller. Otherwise the augmenter takes it.</param>
    public DiffIIAugmenter(StableDiffusion generator, AugmentationOptions options, string workFolder, WorkFolderLock? heldLock = null)
    {
        _sd = generator;
        _options = options;
        // Every option is checked before the lock (a refused run leaves nothing behind) and before any work.
        RunChecks.BeforeWork(generator, options);
        Warnings = RunChecks.LongSuffixes(generator, options);
        _work = new WorkFolder(workFolder, heldLock);
        Resolution = options.Resolution ?? generator.ImageSize;
    }

    public int Resolution { get; }
    public string WorkFolder => _work.Root;
    public IReadOnlyList<ClassImages> Classes => _classes ?? throw new InvalidOperationException("Call Fit first.");
    public LearnedConcepts? Concepts => _concepts;
    public InversionPool? Pool => _pool;
    public IReadOnlyList<GenerationFailure> Failures => _failures;
    /// <summary>What works but is probably not what was meant (a suffix cut off at the text encoder's length).</summary>
    public IReadOnlyList<string> Warnings { get; }
    public string ManifestPath => _work.ManifestPath;

    /// <summary>
    /// Steps 1 and 2a: learns (or loads) the concepts and builds the inversion pools the strategy needs. Work already
    /// in the folder is reused when it was made from the same images and options; a folder made for other images or
    /// options is refused rather than silently mixed.
    /// </summary>
    public void Fit(IReadOnlyList<LabeledImage> images, IProgress<AugmentationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var held = HeldTensors.Hold();
        var clock = Stopwatch.StartNew();
        Prepare(images);
        try
        {
            EnsureConcepts(progress, clock, cancellationToken);
            EnsurePool(progress, clock, cancellationToken);
        }
        finally { ReleaseDecoded(); }
    }

    /// <summary>Step 1 alone (for tools that run the steps one by one): the concepts, learned or loaded, applied to the model.</summary>
    public void LearnConcepts(IReadOnlyList<LabeledImage> images, IProgress<AugmentationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var held = HeldTensors.Hold();
        var clock = Stopwatch.StartNew();
        Prepare(images);
        try { EnsureConcepts(progress, clock, cancellationToken); }
        finally { ReleaseDecoded(); }
    }

    readonly Dictionary<string, Tensor> _decoded = [];

    Tensor Image(string id) => _decoded.TryGetValue(id, out var t) ? t : _decoded[id] = Decode(_images![id]).DetachFromDisposeScope();

    void ReleaseDecoded()
    {
        foreach (var t in _decoded.Values) t.Dispose();
        _decoded.Clear();
    }

    void Prepare(IReadOnlyList<LabeledImage> images)
    {
        var duplicate = images.GroupBy(i => i.Id).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Image id '{duplicate.Key}' appears {duplicate.Count()} times; ids must be unique.");
        if (images.Count == 0) throw new ArgumentException("There are no training images.");
        _images = images.ToDictionary(i => i.Id);
        _classes = images.GroupBy(i => i.Label).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new ClassImages(g.Key, g.Select(i => i.Id).Order(StringComparer.Ordinal).ToList())).ToList();
        OptionLimits.CheckPlanSize(_options.Budget, _classes.Select(c => c.ImageIds.Count));
        // Read and decode every image once, up front: a broken file is named before hours of work rather than in the
        // middle of them, the same bytes give the fingerprint, and steps 1 and 2a reuse the decoded pixels. (Keeping
        // them once seemed to make concept learning go NaN; the cause was TorchSharp Scalars freed mid-call, fixed by
        // KeptScalars, and more allocations only made it likelier.)
        bool keepPixels = _options.Strategy.NeedsTokens() || _options.Strategy.NeedsInversions();
        var hashes = new List<(string Id, string Label, byte[] ContentHash)>(images.Count);
        foreach (var image in images)
        {
            byte[] bytes = ReadImageBytes(image);
            hashes.Add((image.Id, image.Label, SHA256.HashData(bytes)));
            using var bitmap = ImageCodec.Decode(bytes, image.Id, Resolution);
            if (keepPixels && !_decoded.ContainsKey(image.Id)) _decoded[image.Id] = ImageCodec.ToTensor(bitmap, Resolution).DetachFromDisposeScope();
        }
        _work.CheckRun(Storage.WorkFolder.ImagesKey(hashes), Storage.WorkFolder.ModelKey(_sd.Source, _sd.Unet.Config.ToJson()));
        _work.CleanUp();
    }

    void EnsureConcepts(IProgress<AugmentationProgress>? progress, Stopwatch clock, CancellationToken cancellationToken)
    {
        if (!_options.Strategy.NeedsTokens() || _concepts is not null) return;
        _work.CheckConcepts(Storage.WorkFolder.ConceptsKey(_options, Resolution));
        string conceptsFolder = _work.ConceptsFolder;
        if (_options.PretrainedConceptsFolder is not null)
            _concepts = LearnedConcepts.Load(_options.PretrainedConceptsFolder);
        else if (LearnedConcepts.Exists(conceptsFolder))
            _concepts = LearnedConcepts.Load(conceptsFolder);
        else
        {
            var byClass = _classes!.Select(c => (IReadOnlyList<Tensor>)c.ImageIds.Select(Image).ToList()).ToList();
            var conceptProgress = progress is null ? null : new SyncProgress<ConceptProgress>(p =>
                progress.Report(new AugmentationProgress("learn", p.Step, p.TotalSteps, p.Loss, clock.Elapsed)));
            _concepts = ConceptLearner.Learn(_sd, _classes!.Select(c => c.Name).ToList(), byClass, _options.ConceptOptions, _work.Root, conceptProgress, cancellationToken);
            _concepts.Save(conceptsFolder);
            // Training left the LoRA attached as live adapters; the generation path merges it instead.
            foreach (var (_, attention) in _sd.Unet.Attentions()) attention.Adapters = null;
        }
        if (!_concepts.ClassNames.SequenceEqual(_classes!.Select(c => c.Name)))
            throw new InvalidOperationException($"The concepts are for classes [{string.Join(", ", _concepts.ClassNames)}], but the images have [{string.Join(", ", _classes!.Select(c => c.Name))}].");
        _appliedLora = _concepts.ApplyTo(_sd, mergeLora: true);
    }

    void EnsurePool(IProgress<AugmentationProgress>? progress, Stopwatch clock, CancellationToken cancellationToken)
    {
        if (!_options.Strategy.NeedsInversions() || _pool is not null) return;
        _work.CheckInversions(Storage.WorkFolder.InversionKey(_options, Resolution));
        var inputs = _classes!.SelectMany((c, ci) => c.ImageIds.Select(id => new InversionInput(id, ci, Image(id)))).ToList();
        var prompts = Enumerable.Range(0, _classes!.Count).Select(c => _concepts!.Prompt(c)).ToList();
        var poolProgress = progress is null ? null : new SyncProgress<InversionProgress>(p =>
            progress.Report(new AugmentationProgress("invert", p.InversionsDone, p.InversionCount, null, clock.Elapsed)));
        _pool = InversionPool.Build(_sd, prompts, inputs, _options.Inversion, _work.InversionsFolder, poolProgress, cancellationToken);
    }

    /// <summary>The plan of every synthetic image of this run (available after <see cref="Fit"/>).</summary>
    public IReadOnlyList<PlannedSample> Plan(CancellationToken cancellationToken = default) => SamplePlanner.Plan(Classes,
        new PlanOptions { Strategy = _options.Strategy, Budget = _options.Budget, SplitRatio = _options.SplitRatio, Suffixes = _options.Suffixes, Seed = _options.Seed },
        _pool?.IdsByClass, cancellationToken);

    /// <summary>
    /// Steps 2b and 3 (or the baseline): makes every planned image not yet in the manifest, in fixed batches, writing
    /// each PNG atomically before its manifest line. Returns all images of the run, old and new.
    /// </summary>
    public IReadOnlyList<SyntheticImage> Generate(IProgress<AugmentationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var held = HeldTensors.Hold();
        var plan = Plan(cancellationToken);
        var manifest = Manifest.Open(ManifestPath);
        // An entry whose PNG was deleted is not a finished image: drop it, so this run remakes it.
        manifest.DropEntriesWithoutFiles(_work.Root);
        var generator = new SampleBatch(_sd, _options.Generation, Resolution, _pool, PromptFor, id => Decode(_images![id]));
        var clock = Stopwatch.StartNew();
        int done = plan.Count(p => manifest.Contains(p.Id));
        progress?.Report(new AugmentationProgress("generate", done, plan.Count, null, clock.Elapsed));
        foreach (var batch in SamplePlanner.Batches(plan, _options.Generation.BatchSize))
        {
            if (batch.All(p => manifest.Contains(p.Id))) continue;
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var latents = generator.Denoise(batch, cancellationToken);
            var images = _sd.DecodeLatents(latents);
            for (int i = 0; i < batch.Count; i++)
            {
                var sample = batch[i];
                if (manifest.Contains(sample.Id)) continue;
                var image = images[i];
                if (!image.isfinite().all().item<bool>() || !latents[i].isfinite().all().item<bool>())
                {
                    _failures.Add(new GenerationFailure(sample.Id, "the latent became NaN or infinite; no image was written"));
                    continue;
                }
                var entry = ManifestEntry.For(sample, Classes, PromptFor, _options.Generation);
                string path = Path.Combine(_work.Root, entry.File);
                try
                {
                    AtomicFile.WriteAllBytes(path, ImageCodec.ToPng(image));
                    manifest.Append(entry);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // A full disk or a folder turned read-only: say which file, and that the finished images are safe.
                    throw new IOException($"Cannot write the synthetic image {path} ({e.Message}). The {done} images made so far are complete and listed in " +
                                          $"{ManifestPath}; free disk space or make the folder writable, then run again: it resumes with the missing images.", e);
                }
                done++;
            }
            progress?.Report(new AugmentationProgress("generate", done, plan.Count, null, clock.Elapsed));
        }
        var byId = manifest.Entries.ToDictionary(e => e.Id);
        return plan.Where(p => byId.ContainsKey(p.Id)).Select(p => byId[p.Id])
            .Select(e => new SyntheticImage(e.Id, Path.Combine(_work.Root, e.File), e.ClassName, e.Labels, e)).ToList();
    }

    /// <summary>Fit, then Generate.</summary>
    public IReadOnlyList<SyntheticImage> Run(IReadOnlyList<LabeledImage> images, IProgress<AugmentationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        // Generation follows for certain: refuse what it would refuse before the hours of Fit.
        OptionLimits.CheckSuffixes(_options);
        Fit(images, progress, cancellationToken);
        return Generate(progress, cancellationToken);
    }

    /// <summary>The prompt of a sample: the learned prompt of its prompt class (+ suffix), or "a photo of a {class name}" for Real-Guidance.</summary>
    string PromptFor(PlannedSample p, string? suffix) =>
        p.Strategy == Strategy.RealGuidance
            ? $"a photo of a {Classes[p.PromptClassIndex].Name}"
            : _concepts!.Prompt(p.PromptClassIndex, suffix);

    Tensor Decode(LabeledImage image)
    {
        using var bitmap = ImageCodec.Decode(ReadImageBytes(image), image.Id, Resolution);
        return ImageCodec.ToTensor(bitmap, Resolution);
    }

    static byte[] ReadImageBytes(LabeledImage image)
    {
        try { return image.ReadBytes(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ImageDecodeException(image.Id, $"cannot be read ({e.Message}).", e); }
    }

    public void Dispose()
    {
        _appliedLora?.Dispose();
        ReleaseDecoded();
        _work.Dispose();
    }
}
