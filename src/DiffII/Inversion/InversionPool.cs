using System.Text.Json;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Pipelines;
using DiffII.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Inversion;

/// <summary>Which extra inversions a class gets beyond one per real image.</summary>
public enum ExtraInversions
{
    /// <summary>None: a class with one image cannot be interpolated (the paper's limitation).</summary>
    None,
    /// <summary>Classes with a single image also get the inversion of its mirror image (the default).</summary>
    MirrorSingleImageClasses,
    /// <summary>Single-image classes get the mirror and two light centre crops (zoom 0.9 and 0.8), each inverted.</summary>
    MirrorAndCropsSingleImageClasses,
    /// <summary>Every image also gets its mirror's inversion (twice the inversion cost, richer pools).</summary>
    MirrorAll,
}

/// <summary>One image to invert: its id, its class, and the image at model resolution ([3, H, W] in [−1, 1]).</summary>
public sealed record InversionInput(string Id, int ClassIndex, Tensor Image);

public sealed record InversionOptions
{
    /// <summary>DDIM inversion steps (the paper: 25; the official code runs 200).</summary>
    public int Steps { get; init; } = 25;
    /// <summary>Guidance during inversion: 1.0, a single conditional U-Net call per step, as the paper uses.</summary>
    public double GuidanceScale { get; init; } = 1.0;
    public int BatchSize { get; init; } = 8;
    public ExtraInversions Extra { get; init; } = ExtraInversions.MirrorSingleImageClasses;
}

public sealed record InversionProgress(int ClassesDone, int ClassCount, int InversionsDone, int InversionCount);

/// <summary>
/// Step 2a of Diff-II (paper Sec. 3.2.1): the DDIM inversion of every training image, conditioned on its class's
/// learned prompt, kept per class. Latents are the VAE posterior mean × scaling factor (as the official code
/// encodes). Each class is saved to its own safetensors file as soon as it is done, so a rerun inverts only the
/// classes that are missing.
/// </summary>
public sealed class InversionPool
{
    readonly Dictionary<string, Tensor> _latents;

    InversionPool(IReadOnlyList<IReadOnlyList<string>> idsByClass, Dictionary<string, Tensor> latents)
    {
        IdsByClass = idsByClass;
        _latents = latents;
    }

    /// <summary>Per class (in class order), the ids of its inversions; extra ones end in "#mirror" or "#crop0.9".</summary>
    public IReadOnlyList<IReadOnlyList<string>> IdsByClass { get; }

    /// <summary>The inverted latent x_T of one inversion, [C, h, w] (float32, CPU).</summary>
    public Tensor this[string id] => _latents.TryGetValue(id, out var t) ? t : throw new KeyNotFoundException($"No inversion '{id}' in the pool.");

    public int Count => _latents.Count;

    /// <summary>The source images an inversion id stands for (the image itself, or the image an extra view was made from).</summary>
    public static string SourceImageId(string inversionId) => inversionId.Split('#')[0];

    /// <summary>Inverts what is not inverted yet (per class), saving each class to <paramref name="folder"/>.</summary>
    /// <param name="classPrompts">The learned prompt of each class: "a photo of a &lt;class_i&gt; &lt;metaclass&gt;".</param>
    public static InversionPool Build(StableDiffusion sd, IReadOnlyList<string> classPrompts, IReadOnlyList<InversionInput> images,
        InversionOptions options, string folder, IProgress<InversionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(folder);
        AtomicFile.CleanUp(folder);
        var inputs = WithExtraViews(images, options.Extra, classPrompts.Count);
        var byClass = Enumerable.Range(0, classPrompts.Count).Select(c => inputs.Where(i => i.ClassIndex == c).ToList()).ToList();
        var latents = new Dictionary<string, Tensor>();
        int done = 0;
        for (int c = 0; c < byClass.Count; c++)
        {
            string file = ClassFile(folder, c);
            var expected = byClass[c].Select(i => i.Id).ToList();
            if (TryLoadClass(file, expected, latents))
            {
                done += expected.Count;
                progress?.Report(new InversionProgress(c + 1, byClass.Count, done, inputs.Count));
                continue;
            }
            var classLatents = new Dictionary<string, Tensor>();
            using (var scope = NewDisposeScope())
            {
                var text = sd.EncodePrompts([classPrompts[c]]);
                var unconditional = options.GuidanceScale != 1.0 ? sd.EncodePrompts([""]) : null;
                foreach (var chunk in byClass[c].Chunk(Math.Max(1, options.BatchSize)))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var step = NewDisposeScope();
                    var clean = sd.EncodeImages(stack(chunk.Select(i => i.Image).ToArray()));
                    var inverted = Sampling.DdimInvert(sd, clean, text, options.Steps, options.GuidanceScale, unconditional,
                        cancellationToken: cancellationToken).to(ScalarType.Float32, CPU);
                    for (int k = 0; k < chunk.Length; k++)
                        classLatents[chunk[k].Id] = step.MoveToOuter(inverted[k].clone());
                    done += chunk.Length;
                    progress?.Report(new InversionProgress(c, byClass.Count, done, inputs.Count));
                }
                foreach (var t in classLatents.Values) scope.Detach(t);
            }
            SafeTensorsFile.Save(file, classLatents, new Dictionary<string, string> { ["class_index"] = c.ToString(System.Globalization.CultureInfo.InvariantCulture), ["prompt"] = classPrompts[c] });
            foreach (var (id, t) in classLatents) latents[id] = t;
            progress?.Report(new InversionProgress(c + 1, byClass.Count, done, inputs.Count));
        }
        return new InversionPool(byClass.Select(l => (IReadOnlyList<string>)l.Select(i => i.Id).ToList()).ToList(), latents);
    }

    /// <summary>Loads a pool saved by <see cref="Build"/> without a model (e.g. to generate on another machine).</summary>
    public static InversionPool Load(string folder, int classCount)
    {
        var latents = new Dictionary<string, Tensor>();
        var ids = new List<IReadOnlyList<string>>();
        for (int c = 0; c < classCount; c++)
        {
            string file = ClassFile(folder, c);
            if (!File.Exists(file)) throw new FileNotFoundException($"The inversion pool in {folder} has no file for class {c}; run the inversion step.", file);
            var tensors = SafeTensorsFile.LoadAll(file);
            ids.Add(tensors.Keys.Order(StringComparer.Ordinal).ToList());
            foreach (var (id, t) in tensors) latents[id] = t;
        }
        return new InversionPool(ids, latents);
    }

    static string ClassFile(string folder, int classIndex) => Path.Combine(folder, $"class-{classIndex:D4}.safetensors");

    static bool TryLoadClass(string file, IReadOnlyList<string> expectedIds, Dictionary<string, Tensor> into)
    {
        if (!File.Exists(file)) return false;
        var tensors = SafeTensorsFile.LoadAll(file);
        if (!tensors.Keys.ToHashSet().SetEquals(expectedIds))
        {
            // The class's images changed since it was inverted: invert it again.
            foreach (var t in tensors.Values) t.Dispose();
            return false;
        }
        foreach (var (id, t) in tensors) into[id] = t;
        return true;
    }

    /// <summary>Adds the extra views the options ask for (mirror, centre crops) as further inputs.</summary>
    internal static List<InversionInput> WithExtraViews(IReadOnlyList<InversionInput> images, ExtraInversions extra, int classCount)
    {
        var result = new List<InversionInput>(images);
        var counts = images.GroupBy(i => i.ClassIndex).ToDictionary(g => g.Key, g => g.Count());
        foreach (var image in images)
        {
            bool single = counts[image.ClassIndex] == 1;
            if (extra == ExtraInversions.MirrorAll || (single && extra is ExtraInversions.MirrorSingleImageClasses or ExtraInversions.MirrorAndCropsSingleImageClasses))
                result.Add(image with { Id = image.Id + "#mirror", Image = image.Image.flip(2) });
            if (single && extra == ExtraInversions.MirrorAndCropsSingleImageClasses)
                foreach (double zoom in new[] { 0.9, 0.8 })
                    result.Add(image with { Id = image.Id + $"#crop{zoom.ToString(System.Globalization.CultureInfo.InvariantCulture)}", Image = CentreZoom(image.Image, zoom) });
        }
        return result;
    }

    /// <summary>Crops the central <paramref name="zoom"/> fraction and resizes back (bilinear).</summary>
    static Tensor CentreZoom(Tensor image, double zoom)
    {
        long h = image.shape[1], w = image.shape[2];
        long ch = (long)Math.Round(h * zoom), cw = (long)Math.Round(w * zoom);
        long top = (h - ch) / 2, left = (w - cw) / 2;
        var crop = image.narrow(1, top, ch).narrow(2, left, cw).unsqueeze(0);
        return nn.functional.interpolate(crop, [h, w], mode: InterpolationMode.Bilinear, align_corners: false).squeeze(0);
    }
}
