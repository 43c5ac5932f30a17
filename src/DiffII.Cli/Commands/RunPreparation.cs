using System.CommandLine;
using DiffII.Augmentation;
using DiffII.Imaging;
using DiffII.Suffixes;

namespace DiffII.Cli.Commands;

/// <summary>What every augmentation command does first: settle the settings, read the images, find the model, choose suffixes.</summary>
public static class RunPreparation
{
    /// <summary>Reads the images named by the settings (validating every file) and checks the work folder belongs to them.</summary>
    public static ImageSet LoadImages(CliOutput output, RunSettings settings, string work, RunSettings saved)
    {
        ImageSet images = settings.Images is string folder ? ImageSet.FromFolder(folder)
            : settings.Csv is string csv ? ImageSet.FromCsv(csv)
            : throw new CliException($"No images: pass --images DIR (one sub-folder per class) or --csv FILE (path,label rows); {work} has no saved image source.");
        if (images.SkippedSummary() is string skipped)
        {
            // Hidden and system entries are expected beside datasets; anything else left out may be a mistake worth a warning.
            if (images.Skipped.Any(e => e.Reason != ImageFolderContents.HiddenReason)) output.Warning(skipped);
            else output.Note(skipped);
        }
        images.Validate();
        output.Note($"{images.Items.Count} images in {images.Classes.Count} classes ({string.Join(", ", images.Classes.Take(8))}{(images.Classes.Count > 8 ? ", …" : "")}) from {images.Source}");
        if (saved.ImagesFingerprint is string previous && previous != images.Fingerprint())
            throw new CliException($"The work folder {work} holds a run made with different images. Use a new work folder (or delete this one) to start over.");
        return images;
    }

    public static string ResolveModel(RunSettings settings) =>
        ModelLocator.Resolve(settings.Model, Environment.GetEnvironmentVariable(ModelLocator.EnvironmentVariable), AppContext.BaseDirectory);

    /// <summary>
    /// The prompt suffixes of a run that needs them: a file, a preset, captions of the user's images through a chat
    /// endpoint (cached in the work folder), the saved ones, or the paper's preset for the metaclass; else an error
    /// that names the choices.
    /// </summary>
    public static async Task<(IReadOnlyList<string> Suffixes, string Source)?> ResolveSuffixesAsync(CliOutput output, ParseResult parse, MethodOptions m,
        ResolvedRun run, RunSettings saved, CancellationToken cancel)
    {
        if (!run.NeedsSuffixes) return null;
        if (parse.GetValue(m.SuffixFile) is string file)
        {
            string path = Path.GetFullPath(file);
            var kind = Storage.FileKind.Of(path);
            if (kind == Storage.FileKindValue.Missing) throw new CliException($"--suffix-file {path} does not exist; pass a text file with one suffix per line.");
            if (kind != Storage.FileKindValue.Regular) throw new CliException($"--suffix-file {path} is {Storage.FileKind.Describe(kind)}, not a file; pass a text file with one suffix per line.");
            return (SuffixPresets.ReadFile(path), "file " + path);
        }
        if (parse.GetValue(m.SuffixPreset) is string name)
        {
            var preset = SuffixPresets.Get(name);
            if (!string.Equals(preset.Metaclass, run.Metaclass, StringComparison.OrdinalIgnoreCase))
                output.Note($"note: preset {preset.Name} was written for \"{preset.Metaclass}\" images; the metaclass here is \"{run.Metaclass}\".");
            return (preset.Suffixes, "preset " + preset.Name);
        }
        if (parse.GetValue(m.CaptionEndpoint) is string endpoint)
            return (await CaptionAsync(output, parse, m, run, endpoint, cancel), "captions via " + endpoint);
        if (saved.Suffixes is { Count: > 0 } kept)
            return (kept, saved.SuffixSource ?? "saved");
        var matching = SuffixPresets.All.FirstOrDefault(p => string.Equals(p.Metaclass, run.Metaclass, StringComparison.OrdinalIgnoreCase));
        if (matching is not null)
        {
            output.Note($"using the suffix preset {matching.Name} for \"{run.Metaclass}\" (choose with --suffix-preset, --suffix-file or --caption-endpoint)");
            return (matching.Suffixes, "preset " + matching.Name);
        }
        throw new CliException($"{run.Strategy.Name()} needs prompt suffixes: pass --suffix-preset NAME ({string.Join(", ", SuffixPresets.All.Select(p => p.Name))}), " +
                               "--suffix-file FILE, or --caption-endpoint URL --caption-model NAME; or --split 0 for none.");
    }

    public const string CaptionedSuffixesFile = "suffixes-captioned.txt";

    static async Task<IReadOnlyList<string>> CaptionAsync(CliOutput output, ParseResult parse, MethodOptions m, ResolvedRun run, string endpoint, CancellationToken cancel)
    {
        string cache = Path.Combine(run.Work, CaptionedSuffixesFile);
        if (File.Exists(cache))
        {
            output.Note($"using the suffixes captioned earlier ({cache}; delete it to caption again)");
            return SuffixPresets.ReadFile(cache);
        }
        string captionModel = parse.GetValue(m.CaptionModel)
            ?? throw new CliException("--caption-endpoint needs --caption-model NAME (a vision model the endpoint serves, e.g. llava or gpt-4o-mini).");
        string summaryModel = parse.GetValue(m.SummaryModel) ?? captionModel;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new CliException($"--caption-endpoint '{endpoint}' is not an http(s) URL; e.g. http://localhost:11434/v1 for Ollama.");
        string? apiKey = null;
        if (parse.GetValue(m.ApiKeyEnv) is string variable)
        {
            apiKey = Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrEmpty(apiKey)) throw new CliException($"--api-key-env names {variable}, but that environment variable is not set.");
        }
        using var captioner = ChatEndpoint.Create(uri, captionModel, apiKey);
        using var summarizer = ChatEndpoint.Create(uri, summaryModel, apiKey);
        var inputs = PickForCaptioning(run.Images, parse.GetValue(m.CaptionImages));
        output.Note($"captioning {inputs.Count} images with {captionModel} at {endpoint}, then summarising with {summaryModel}");
        var generator = new SuffixGenerator(captioner, summarizer);
        IReadOnlyList<string> suffixes = null!;
        await Task.Run(() => output.Track(progress =>
        {
            var adapter = new MethodRun.Adapter<SuffixProgress>(p => progress.Report(new StepProgress(p.Stage == "caption" ? "captioning images" : "summarising", p.Captioned, p.Total)));
            suffixes = generator.GenerateAsync(inputs, run.Metaclass, parse.GetValue(m.SuffixCount), adapter, cancel).GetAwaiter().GetResult();
            return 0;
        }), cancel);
        Directory.CreateDirectory(run.Work);
        Storage.AtomicFile.WriteAllText(cache, $"# Suffixes summarised by {summaryModel} from {captionModel}'s captions of {inputs.Count} images.\n" + string.Join("\n", suffixes) + "\n");
        return suffixes;
    }

    /// <summary>Up to <paramref name="limit"/> images, taken in turn from each class so every class is described.</summary>
    static List<CaptionInput> PickForCaptioning(ImageSet images, int limit)
    {
        var queues = images.Classes.Select(c => new Queue<(string Id, string Label, string Path)>(images.Items.Where(i => i.Label == c))).ToList();
        var picked = new List<CaptionInput>();
        // The option's range is 1..10 000; the bound here still guarantees the loop ends whatever it is given.
        limit = Math.Max(1, limit);
        while (picked.Count < limit && queues.Any(q => q.Count > 0))
            foreach (var queue in queues)
                if (queue.Count > 0 && picked.Count < limit)
                {
                    var item = queue.Dequeue();
                    picked.Add(new CaptionInput(File.ReadAllBytes(item.Path), MediaType(item.Path), item.Id));
                }
        return picked;
    }

    static string MediaType(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".jpg" or ".jpeg" => "image/jpeg",
        ".webp" => "image/webp",
        ".gif" => "image/gif",
        ".bmp" => "image/bmp",
        ".ico" => "image/x-icon",
        _ => "image/png",
    };

    /// <summary>
    /// Images already in the manifest were made with the saved sampler settings; changing them now would mix two
    /// kinds of images under one manifest, so it is refused with what to do instead.
    /// </summary>
    public static void CheckGenerationUnchanged(RunSettings saved, ResolvedRun run, IReadOnlyList<string>? suffixes)
    {
        string manifest = Path.Combine(run.Work, "manifest.jsonl");
        if (!File.Exists(manifest) || new FileInfo(manifest).Length == 0) return;
        var changes = new List<string>();
        if (saved.Split is double split && split != run.Split) changes.Add($"--split {split} (now {run.Split})");
        if (saved.SampleSteps is int steps && steps != run.SampleSteps) changes.Add($"--steps {steps} (now {run.SampleSteps})");
        if (saved.Guidance is double guidance && guidance != run.Guidance) changes.Add($"--guidance {guidance} (now {run.Guidance})");
        if (suffixes is not null && saved.Suffixes is { } kept && !kept.SequenceEqual(suffixes)) changes.Add("other suffixes");
        if (changes.Count > 0)
            throw new CliException($"The work folder {run.Work} already holds images generated with {string.Join(", ", changes)}; " +
                                   $"use a new --work folder, or delete {manifest} and {Path.Combine(run.Work, "synthetic")} to generate again.");
    }
}
