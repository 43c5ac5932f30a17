using System.Text.Json;

namespace DiffII.Diffusion.IO;

/// <summary>How a Stable Diffusion checkpoint is stored.</summary>
public enum CheckpointLayout
{
    /// <summary>A diffusers pipeline folder: model_index.json plus one sub-folder per component.</summary>
    DiffusersFolder,
    /// <summary>One CompVis/LDM ("A1111") <c>.safetensors</c> file; read it with <see cref="SingleFileCheckpoint"/>.</summary>
    SingleFile,
}

/// <summary>Options for <see cref="DiffusersFolder.Describe"/>.</summary>
public sealed record DiffusersFolderOptions
{
    /// <summary>
    /// A weights variant such as "fp16": prefer <c>diffusion_pytorch_model.fp16.safetensors</c> (or its sharded index).
    /// A component without that variant falls back to its default weights (its <see cref="ModelComponentFiles.Variant"/>
    /// is then null), so a folder with fp16 UNet weights but a single fp32 VAE still opens. Without a variant, only the
    /// default weights are used; a component that has only variant files is an error naming the variants it has.
    /// </summary>
    public string? Variant { get; init; }
}

/// <summary>A model component (unet, vae, text_encoder): its folder, config and resolved weight files.</summary>
/// <param name="Name">The component name in model_index.json, e.g. "unet".</param>
/// <param name="Library">"diffusers" or "transformers", from model_index.json.</param>
/// <param name="ClassName">E.g. "UNet2DConditionModel", from model_index.json.</param>
/// <param name="Directory">The component folder.</param>
/// <param name="ConfigPath">Its config.json.</param>
/// <param name="WeightFiles">The safetensors file, or every shard of a sharded model.</param>
/// <param name="WeightIndexPath">The <c>*.safetensors.index.json</c> of sharded weights; null for one file.</param>
/// <param name="Variant">The variant the weights are, e.g. "fp16"; null for default weights.</param>
public sealed record ModelComponentFiles(
    string Name, string Library, string ClassName, string Directory, string ConfigPath,
    IReadOnlyList<string> WeightFiles, string? WeightIndexPath, string? Variant)
{
    /// <summary>Opens the weights (all shards) as one tensor source; dispose it to close the files.</summary>
    public SafeTensorsFilesSource OpenWeights() => SafeTensorsFilesSource.Open(WeightIndexPath ?? WeightFiles[0]);
}

/// <summary>The CLIP BPE tokenizer files.</summary>
public sealed record TokenizerFiles(string Library, string ClassName, string Directory, string VocabPath, string MergesPath,
    string? TokenizerConfigPath, string? SpecialTokensMapPath);

/// <summary>The scheduler's config.</summary>
public sealed record SchedulerFiles(string Library, string ClassName, string Directory, string ConfigPath);

/// <summary>A component entry of model_index.json: <c>"name": [library, class]</c> (both null for an absent optional part).</summary>
public sealed record PipelineComponent(string? Library, string? ClassName);

/// <summary>
/// Where the parts of a Stable Diffusion checkpoint are. For <see cref="CheckpointLayout.DiffusersFolder"/> every
/// component is resolved; for <see cref="CheckpointLayout.SingleFile"/> only <see cref="Path"/> and <see cref="Version"/>
/// are set (open it with <see cref="SingleFileCheckpoint.Open"/>).
/// </summary>
/// <param name="Path">The folder or file, as a full path.</param>
/// <param name="Layout">Folder or single file.</param>
/// <param name="Version">The SD generation, when it can be told: single files by their text encoder; folders by the UNet's
/// cross_attention_dim (768 → V1, 1024 → V2; other widths, e.g. tiny test models, give null).</param>
/// <param name="PipelineClassName">model_index.json's <c>_class_name</c>, e.g. "StableDiffusionPipeline".</param>
/// <param name="Components">Every component entry of model_index.json, including ones not used here (safety_checker, …).</param>
/// <param name="Unet">UNet2DConditionModel files (folders only).</param>
/// <param name="Vae">AutoencoderKL files (folders only).</param>
/// <param name="TextEncoder">CLIPTextModel files (folders only).</param>
/// <param name="Tokenizer">CLIPTokenizer files (folders only).</param>
/// <param name="Scheduler">Scheduler config (folders only).</param>
public sealed record CheckpointDescriptor(
    string Path, CheckpointLayout Layout, StableDiffusionVersion? Version, string? PipelineClassName,
    IReadOnlyDictionary<string, PipelineComponent> Components,
    ModelComponentFiles? Unet, ModelComponentFiles? Vae, ModelComponentFiles? TextEncoder,
    TokenizerFiles? Tokenizer, SchedulerFiles? Scheduler);

/// <summary>
/// Finds the files of a Stable Diffusion checkpoint without loading any model: a diffusers folder (model_index.json,
/// <c>unet/</c>, <c>vae/</c>, <c>text_encoder/</c>, <c>tokenizer/</c>, <c>scheduler/</c>) or a single-file checkpoint.
/// Every problem is a <see cref="CheckpointLayoutException"/> naming the path and what was expected there.
/// </summary>
public static class DiffusersFolder
{
    const string ModelIndex = "model_index.json";

    /// <summary>Describes the checkpoint at <paramref name="path"/>: a diffusers folder, or a single-file <c>.safetensors</c>.</summary>
    public static CheckpointDescriptor Describe(string path, DiffusersFolderOptions? options = null)
    {
        options ??= new DiffusersFolderOptions();
        if (File.Exists(path)) return DescribeSingleFile(path);
        if (!Directory.Exists(path))
            throw new CheckpointLayoutException($"{path}: no such file or folder (expected a diffusers folder with {ModelIndex}, or a single-file .safetensors checkpoint).");

        string root = System.IO.Path.GetFullPath(path);
        string indexPath = System.IO.Path.Combine(root, ModelIndex);
        if (!File.Exists(indexPath))
        {
            var singles = Directory.GetFiles(root, "*.safetensors").Select(System.IO.Path.GetFileName).ToList();
            throw new CheckpointLayoutException($"{root}: not a diffusers folder: {ModelIndex} is missing." +
                (singles.Count > 0 ? $" It holds {string.Join(", ", singles)}; to use a single-file checkpoint, point at that file." : ""));
        }
        var (pipelineClass, components) = ReadModelIndex(indexPath);

        var unet = ModelComponent(root, indexPath, components, "unet", options.Variant);
        var vae = ModelComponent(root, indexPath, components, "vae", options.Variant);
        var textEncoder = ModelComponent(root, indexPath, components, "text_encoder", options.Variant);
        var tokenizer = Tokenizer(root, indexPath, components);
        var scheduler = Scheduler(root, indexPath, components);
        return new CheckpointDescriptor(root, CheckpointLayout.DiffusersFolder, VersionFromUnetConfig(unet.ConfigPath), pipelineClass, components,
            unet, vae, textEncoder, tokenizer, scheduler);
    }

    static CheckpointDescriptor DescribeSingleFile(string path)
    {
        using var checkpoint = SingleFileCheckpoint.Open(path);
        return new CheckpointDescriptor(System.IO.Path.GetFullPath(path), CheckpointLayout.SingleFile, checkpoint.Version, null,
            new Dictionary<string, PipelineComponent>(), null, null, null, null, null);
    }

    static (string? PipelineClass, Dictionary<string, PipelineComponent> Components) ReadModelIndex(string indexPath)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(indexPath)); }
        catch (JsonException e) { throw new CheckpointLayoutException($"{indexPath}: malformed {ModelIndex}: not valid JSON ({e.Message}).", e); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new CheckpointLayoutException($"{indexPath}: malformed {ModelIndex}: expected a JSON object of components.");

        string? pipelineClass = null;
        var components = new Dictionary<string, PipelineComponent>(StringComparer.Ordinal);
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            if (property.Name == "_class_name")
            {
                pipelineClass = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString()
                    : throw new CheckpointLayoutException($"{indexPath}: malformed {ModelIndex}: \"_class_name\" must be a string.");
                continue;
            }
            // Other "_…" entries (versions) and plain settings (requires_safety_checker, …) are not components.
            if (property.Name.StartsWith('_') || property.Value.ValueKind != JsonValueKind.Array) continue;
            var items = property.Value.EnumerateArray().ToList();
            if (items.Count != 2 || items.Any(i => i.ValueKind is not (JsonValueKind.String or JsonValueKind.Null)))
                throw new CheckpointLayoutException($"{indexPath}: malformed {ModelIndex}: component \"{property.Name}\" must be [library, class name], e.g. [\"diffusers\", \"UNet2DConditionModel\"]; found {property.Value.GetRawText()}.");
            components[property.Name] = new PipelineComponent(items[0].GetString(), items[1].GetString());
        }
        return (pipelineClass, components);
    }

    /// <summary>The component's entry and folder, both required.</summary>
    static (PipelineComponent Entry, string Directory) Locate(string root, string indexPath, Dictionary<string, PipelineComponent> components, string name, string expectedClass)
    {
        if (!components.TryGetValue(name, out var entry) || entry.Library is null || entry.ClassName is null)
            throw new CheckpointLayoutException($"{indexPath}: {ModelIndex} lists no \"{name}\" component (expected e.g. \"{name}\": {expectedClass}); a Stable Diffusion pipeline needs it.");
        string directory = System.IO.Path.Combine(root, name);
        if (!Directory.Exists(directory))
            throw new CheckpointLayoutException($"{directory}: folder missing; {ModelIndex} lists \"{name}\" ({entry.Library} {entry.ClassName}), whose config and weights belong there.");
        return (entry, directory);
    }

    static string RequireFile(string directory, string fileName, string what)
    {
        string path = System.IO.Path.Combine(directory, fileName);
        return File.Exists(path) ? path : throw new CheckpointLayoutException($"{path}: file missing (the {what}).");
    }

    static ModelComponentFiles ModelComponent(string root, string indexPath, Dictionary<string, PipelineComponent> components, string name, string? variant)
    {
        string expected = name switch
        {
            "unet" => "[\"diffusers\", \"UNet2DConditionModel\"]",
            "vae" => "[\"diffusers\", \"AutoencoderKL\"]",
            _ => "[\"transformers\", \"CLIPTextModel\"]",
        };
        var (entry, directory) = Locate(root, indexPath, components, name, expected);
        string config = RequireFile(directory, "config.json", $"{name} model config");
        var (files, index, usedVariant) = ResolveWeights(directory, name, entry.Library!, variant);
        return new ModelComponentFiles(name, entry.Library!, entry.ClassName!, directory, config, files, index, usedVariant);
    }

    /// <summary>Picks the weights of one component folder (see <see cref="DiffusersFolderOptions.Variant"/> for the rule).</summary>
    static (IReadOnlyList<string> Files, string? Index, string? Variant) ResolveWeights(string directory, string name, string library, string? variant)
    {
        // diffusers saves models as diffusion_pytorch_model.*, transformers as model.*; accept either, the library's first.
        string[] baseNames = library == "transformers" ? ["model", "diffusion_pytorch_model"] : ["diffusion_pytorch_model", "model"];

        if (variant is not null)
            foreach (string baseName in baseNames)
                if (Find(directory, baseName, variant) is { } found) return (found.Files, found.Index, variant);
        foreach (string baseName in baseNames)
            if (Find(directory, baseName, null) is { } found) return (found.Files, found.Index, null);

        var present = Directory.GetFiles(directory).Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var pickles = present.Where(f => f!.EndsWith(".bin", StringComparison.Ordinal) || f.EndsWith(".bin.index.json", StringComparison.Ordinal)
                                         || f.EndsWith(".ckpt", StringComparison.Ordinal) || f.EndsWith(".pt", StringComparison.Ordinal) || f.EndsWith(".pth", StringComparison.Ordinal)).ToList();
        var variants = present.Where(f => f!.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal) && f.Contains(".safetensors.index", StringComparison.Ordinal))
            .Select(f => VariantOf(f!, baseNames)).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        string expected = variant is null ? $"{baseNames[0]}.safetensors" : $"{baseNames[0]}.{variant}.safetensors or {baseNames[0]}.safetensors";
        if (variants.Count > 0 && variant is null)
            throw new CheckpointLayoutException($"{directory}: the {name} weights exist only as variant(s) {string.Join(", ", variants.Select(v => $"\"{v}\""))} ({expected} is missing); choose one with DiffusersFolderOptions.Variant.");
        if (pickles.Count > 0)
            throw new CheckpointLayoutException($"{directory}: the {name} weights are only PyTorch pickle files ({string.Join(", ", pickles)}), which are not loaded because unpickling can run arbitrary code; convert them to safetensors (expected {expected}).");
        throw new CheckpointLayoutException($"{directory}: no {name} weights: expected {expected} or a sharded *.safetensors.index.json" +
            (present.Count > 0 ? $"; the folder holds {string.Join(", ", present)}." : "; the folder is empty."));
    }

    /// <summary>One weights file, or a shard index whose shards are listed in its weight_map.</summary>
    static (IReadOnlyList<string> Files, string? Index)? Find(string directory, string baseName, string? variant)
    {
        string suffix = variant is null ? "" : "." + variant;
        string single = System.IO.Path.Combine(directory, $"{baseName}{suffix}.safetensors");
        if (File.Exists(single)) return ([single], null);
        // diffusers names a variant index diffusion_pytorch_model.safetensors.index.fp16.json; older files use .fp16.safetensors.index.json.
        string[] indexNames = variant is null
            ? [$"{baseName}.safetensors.index.json"]
            : [$"{baseName}.safetensors.index.{variant}.json", $"{baseName}.{variant}.safetensors.index.json"];
        foreach (string indexName in indexNames)
        {
            string index = System.IO.Path.Combine(directory, indexName);
            if (!File.Exists(index)) continue;
            var shards = SafeTensorsFilesSource.ReadWeightMap(index).Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
                .Select(s => System.IO.Path.Combine(directory, s)).ToList();
            string? missing = shards.FirstOrDefault(s => !File.Exists(s));
            if (missing is not null) throw new CheckpointLayoutException($"{index}: the weight_map names shard {System.IO.Path.GetFileName(missing)}, but {missing} does not exist.");
            return (shards, index);
        }
        return null;
    }

    /// <summary>"fp16" for diffusion_pytorch_model.fp16.safetensors, its shards or its index; null for default weights.</summary>
    static string? VariantOf(string fileName, string[] baseNames)
    {
        foreach (string baseName in baseNames)
        {
            if (!fileName.StartsWith(baseName + ".", StringComparison.Ordinal)) continue;
            var parts = fileName[(baseName.Length + 1)..].Split('.');
            // <base>.<variant>.safetensors | <base>.<variant>-00001-of-00002.safetensors | <base>.safetensors.index.<variant>.json | <base>.<variant>.safetensors.index.json
            if (parts.Length == 2 && parts[1] == "safetensors") return parts[0].Split('-')[0];
            if (parts.Length == 4 && parts[0] == "safetensors" && parts[1] == "index" && parts[3] == "json") return parts[2];
            if (parts.Length == 4 && parts[1] == "safetensors" && parts[2] == "index") return parts[0];
        }
        return null;
    }

    static TokenizerFiles Tokenizer(string root, string indexPath, Dictionary<string, PipelineComponent> components)
    {
        var (entry, directory) = Locate(root, indexPath, components, "tokenizer", "[\"transformers\", \"CLIPTokenizer\"]");
        string vocab = RequireFile(directory, "vocab.json", "CLIP tokenizer vocabulary");
        string merges = RequireFile(directory, "merges.txt", "CLIP tokenizer BPE merges");
        string? Optional(string file) => File.Exists(System.IO.Path.Combine(directory, file)) ? System.IO.Path.Combine(directory, file) : null;
        return new TokenizerFiles(entry.Library!, entry.ClassName!, directory, vocab, merges, Optional("tokenizer_config.json"), Optional("special_tokens_map.json"));
    }

    static SchedulerFiles Scheduler(string root, string indexPath, Dictionary<string, PipelineComponent> components)
    {
        var (entry, directory) = Locate(root, indexPath, components, "scheduler", "[\"diffusers\", \"DDIMScheduler\"]");
        return new SchedulerFiles(entry.Library!, entry.ClassName!, directory, RequireFile(directory, "scheduler_config.json", "scheduler config"));
    }

    static StableDiffusionVersion? VersionFromUnetConfig(string configPath)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(configPath));
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("cross_attention_dim", out var dim)
                && dim.ValueKind == JsonValueKind.Number && dim.TryGetInt64(out long width))
                return width switch { 768 => StableDiffusionVersion.V1, 1024 => StableDiffusionVersion.V2, _ => null };
            return null;
        }
        catch (JsonException e)
        {
            throw new CheckpointLayoutException($"{configPath}: the UNet config is not valid JSON ({e.Message}).", e);
        }
    }
}
