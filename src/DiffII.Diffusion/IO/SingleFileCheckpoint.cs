using System.Buffers.Binary;
using System.Text.Json;
using static TorchSharp.torch;

namespace DiffII.Diffusion.IO;

/// <summary>The Stable Diffusion generation a checkpoint belongs to (by its text encoder).</summary>
public enum StableDiffusionVersion
{
    /// <summary>SD 1.x: CLIP ViT-L/14 text encoder (width 768 in the real models).</summary>
    V1,
    /// <summary>SD 2.x: OpenCLIP ViT-H/14 text encoder (width 1024 in the real models).</summary>
    V2,
}

/// <summary>Options for <see cref="SingleFileCheckpoint.Open"/>.</summary>
public sealed record SingleFileOpenOptions
{
    /// <summary>
    /// Accept keys that are neither mapped nor known to be unneeded (listed in <see cref="SingleFileCheckpoint.UnknownKeys"/>).
    /// Off by default: an unexplained key usually means a model variant these rules do not cover.
    /// </summary>
    public bool IgnoreUnknownKeys { get; init; }
}

/// <summary>
/// A CompVis/LDM ("A1111") single-file Stable Diffusion 1.x/2.x checkpoint in safetensors form, seen as three
/// diffusers-layout components (<c>unet</c>, <c>vae</c>, <c>text_encoder</c>). The file stays open and every tensor is
/// read, renamed, reshaped or split only when a component source's <c>Load</c> asks for it, so a 4 GB file is never
/// held in memory. Dispose to close the file.
/// </summary>
/// <remarks>
/// Keys that belong to no diffusers component are recognised and left out on purpose (<see cref="IgnoredKeys"/>): the
/// LDM DDPM schedule buffers (<c>betas</c> … <c>posterior_mean_coef2</c>), <c>model_ema.*</c> (EMA copies and counters;
/// the non-EMA <c>model.diffusion_model.*</c> weights are used, as diffusers does by default), OpenCLIP's
/// <c>text_projection</c> and <c>logit_scale</c>, SD 2's last OpenCLIP resblock (SD 2 conditions on the penultimate layer,
/// so the diffusers text encoder has one layer fewer), and the CLIP <c>position_ids</c> buffer, which is recreated as
/// 0..n−1 because merged checkpoints often carry a damaged copy.
/// </remarks>
public sealed class SingleFileCheckpoint : IDisposable
{
    readonly IDisposable? _owner;
    readonly Dictionary<string, MappedTensorSource> _components;

    SingleFileCheckpoint(string path, IDisposable? owner, StableDiffusionVersion version, TextEncoderLayout layout, long crossAttentionDim,
        SingleFileKeyMap.ForwardMapping mapping)
    {
        Path = path; _owner = owner; Version = version; TextEncoderLayout = layout; CrossAttentionDim = crossAttentionDim;
        LayersPerBlock = mapping.LayersPerBlock;
        IgnoredKeys = mapping.Ignored;
        UnknownKeys = mapping.Unrecognized;
        _components = new()
        {
            ["unet"] = new MappedTensorSource($"{path} [unet]", mapping.Unet),
            ["vae"] = new MappedTensorSource($"{path} [vae]", mapping.Vae),
            ["text_encoder"] = new MappedTensorSource($"{path} [text_encoder]", mapping.TextEncoder),
        };
    }

    /// <summary>The file (or the name of the source it was built from).</summary>
    public string Path { get; }
    public StableDiffusionVersion Version { get; }
    public TextEncoderLayout TextEncoderLayout { get; }
    /// <summary>The UNet's cross-attention width (<c>attn2.to_k</c> input features) = the text encoder's hidden size.</summary>
    public long CrossAttentionDim { get; }
    /// <summary>The UNet's resnets per down block, read from where the first downsampler sits.</summary>
    public int LayersPerBlock { get; }

    /// <summary>UNet2DConditionModel weights under diffusers names.</summary>
    public ITensorSource Unet => _components["unet"];
    /// <summary>AutoencoderKL weights under diffusers names (attention as <c>to_q/to_k/to_v/to_out.0</c>, linear shapes).</summary>
    public ITensorSource Vae => _components["vae"];
    /// <summary>CLIPTextModel weights under transformers names (for SD 2: q/k/v split out of <c>in_proj</c>, last layer dropped).</summary>
    public ITensorSource TextEncoder => _components["text_encoder"];
    /// <summary>Original keys deliberately not mapped (see the class remarks).</summary>
    public IReadOnlyList<string> IgnoredKeys { get; }
    /// <summary>Original keys not understood; empty unless <see cref="SingleFileOpenOptions.IgnoreUnknownKeys"/> was set.</summary>
    public IReadOnlyList<string> UnknownKeys { get; }

    /// <summary>One component by its diffusers folder name: "unet", "vae" or "text_encoder".</summary>
    public ITensorSource Component(string name) =>
        _components.TryGetValue(name, out var source) ? source
            : throw new ArgumentException($"A single-file checkpoint has no component '{name}'; it has {string.Join(", ", SingleFileKeyMap.Components)}.", nameof(name));

    /// <summary>Opens a <c>.safetensors</c> single-file checkpoint (header only; tensors are read on demand).</summary>
    /// <exception cref="CheckpointLayoutException">A pickle file (.ckpt etc.), or a layout other than SD 1.x/2.x single-file.</exception>
    public static SingleFileCheckpoint Open(string path, SingleFileOpenOptions? options = null)
    {
        RefusePickle(path);
        var file = SafeTensorsFile.Open(path);
        try
        {
            return Create(new SafeTensorsSource(file), file, options);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Maps tensors already available under original names (e.g. in memory). <paramref name="source"/> must outlive the
    /// result; nothing is read until a component tensor is loaded.
    /// </summary>
    public static SingleFileCheckpoint FromSource(ITensorSource source, SingleFileOpenOptions? options = null) => Create(source, null, options);

    static SingleFileCheckpoint Create(ITensorSource source, IDisposable? owner, SingleFileOpenOptions? options)
    {
        var keys = source.Keys.ToList();
        var layout = DetectLayout(source.Name, keys);
        var mapping = SingleFileKeyMap.ToDiffusers(source, layout);
        if (mapping.Unrecognized.Count > 0 && options?.IgnoreUnknownKeys != true)
            throw new CheckpointLayoutException(
                $"{source.Name}: {mapping.Unrecognized.Count} key(s) fit no Stable Diffusion {(layout == TextEncoderLayout.Clip ? "1.x" : "2.x")} component: " +
                string.Join(", ", mapping.Unrecognized.Take(10).Select(k => $"'{k}'")) + (mapping.Unrecognized.Count > 10 ? ", ..." : "") +
                ". This may be a model variant these rules do not cover; set IgnoreUnknownKeys to load the rest anyway.");

        long crossAttentionDim = CrossAttentionWidth(source, keys);
        long textWidth = TextWidth(source, layout);
        if (crossAttentionDim != textWidth)
            throw new CheckpointLayoutException(
                $"{source.Name}: the UNet's cross-attention expects {crossAttentionDim}-wide text features but the {layout} text encoder is {textWidth} wide; these parts do not belong together.");
        var version = layout == TextEncoderLayout.Clip ? StableDiffusionVersion.V1 : StableDiffusionVersion.V2;
        return new SingleFileCheckpoint(source.Name, owner, version, layout, crossAttentionDim, mapping);
    }

    static TextEncoderLayout DetectLayout(string name, List<string> keys)
    {
        bool unet = keys.Any(k => k.StartsWith(SingleFileKeyMap.UnetPrefix, StringComparison.Ordinal));
        bool vae = keys.Any(k => k.StartsWith(SingleFileKeyMap.VaePrefix, StringComparison.Ordinal));
        bool clip = keys.Any(k => k.StartsWith(SingleFileKeyMap.ClipPrefix, StringComparison.Ordinal));
        bool openClip = keys.Any(k => k.StartsWith(SingleFileKeyMap.OpenClipPrefix, StringComparison.Ordinal));
        if (unet && vae && clip != openClip) return clip ? TextEncoderLayout.Clip : TextEncoderLayout.OpenClip;

        var missing = new List<string>();
        if (!unet) missing.Add($"UNet ({SingleFileKeyMap.UnetPrefix}*)");
        if (!vae) missing.Add($"VAE ({SingleFileKeyMap.VaePrefix}*)");
        if (!clip && !openClip) missing.Add($"text encoder ({SingleFileKeyMap.ClipPrefix}* or {SingleFileKeyMap.OpenClipPrefix}*)");
        string problem = clip && openClip ? "it has both a CLIP and an OpenCLIP text encoder" : "no " + string.Join(", no ", missing);
        throw new CheckpointLayoutException(
            $"{name}: not a Stable Diffusion 1.x/2.x single-file checkpoint: {problem}. " +
            $"Its top-level key prefixes: {DescribePrefixes(keys)}.{Hint(keys)}");
    }

    static string DescribePrefixes(List<string> keys)
    {
        if (keys.Count == 0) return "(no tensors)";
        static string Prefix(string key)
        {
            string first = key.Split('.')[0];
            // Kohya-style LoRA keys put the whole path in the first segment; its first two words say enough.
            if (first.StartsWith("lora_", StringComparison.OrdinalIgnoreCase)) return string.Join('_', first.Split('_').Take(2)) + "_*";
            return first is "model" or "cond_stage_model" && key.Split('.').Length > 2 ? string.Join('.', key.Split('.')[..2]) : first;
        }
        var groups = keys.GroupBy(Prefix).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).ToList();
        return string.Join(", ", groups.Take(8).Select(g => $"{g.Key} ({g.Count()})")) + (groups.Count > 8 ? $", ... ({groups.Count} in all)" : "");
    }

    static string Hint(List<string> keys)
    {
        if (keys.Any(k => k.StartsWith("conditioner.", StringComparison.Ordinal)))
            return " It looks like an SDXL checkpoint (conditioner.*), which is not supported.";
        if (keys.Any(k => k.Contains("lora", StringComparison.OrdinalIgnoreCase)))
            return " It looks like a LoRA file: load it as a LoRA on top of a base model, not as a checkpoint.";
        if (keys.Any(k => k.StartsWith("down_blocks.", StringComparison.Ordinal) || k.StartsWith("encoder.down_blocks.", StringComparison.Ordinal) ||
                          k.StartsWith("text_model.", StringComparison.Ordinal) || k.StartsWith("conv_in.", StringComparison.Ordinal)))
            return " It looks like a single diffusers component file: point at the diffusers folder (the one with model_index.json) instead.";
        return "";
    }

    static long CrossAttentionWidth(ITensorSource source, List<string> keys)
    {
        string? toK = keys.FirstOrDefault(k => k.StartsWith(SingleFileKeyMap.UnetPrefix, StringComparison.Ordinal) && k.EndsWith(".attn2.to_k.weight", StringComparison.Ordinal));
        if (toK is null || !source.TryGetShape(toK, out var shape) || shape.Length != 2)
            throw new CheckpointLayoutException($"{source.Name}: the UNet has no cross-attention (no {SingleFileKeyMap.UnetPrefix}…attn2.to_k.weight of rank 2), so it is not a text-to-image Stable Diffusion UNet.");
        return shape[1];
    }

    static long TextWidth(ITensorSource source, TextEncoderLayout layout)
    {
        string key = layout == TextEncoderLayout.Clip
            ? (source.TryGetShape(SingleFileKeyMap.ClipPrefix + "text_model.embeddings.token_embedding.weight", out _)
                ? SingleFileKeyMap.ClipPrefix + "text_model.embeddings.token_embedding.weight"
                : SingleFileKeyMap.ClipPrefix + "embeddings.token_embedding.weight")
            : SingleFileKeyMap.OpenClipPrefix + "token_embedding.weight";
        if (!source.TryGetShape(key, out var shape) || shape.Length != 2)
            throw new CheckpointLayoutException($"{source.Name}: the text encoder has no token embedding '{key}' of rank 2.");
        return shape[1];
    }

    static readonly string[] PickleExtensions = [".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"];

    /// <summary>
    /// Refuses PyTorch pickle files (by extension, or by content: a zip archive or a pickle stream), without reading
    /// them: unpickling can run arbitrary code.
    /// </summary>
    internal static void RefusePickle(string path)
    {
        string ext = System.IO.Path.GetExtension(path).ToLowerInvariant();
        bool pickle = PickleExtensions.Contains(ext);
        if (!pickle && File.Exists(path))
        {
            Span<byte> head = stackalloc byte[4];
            using var stream = File.OpenRead(path);
            int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            // torch.save writes a zip archive ("PK\x03\x04") or, in the legacy format, a pickle stream (PROTO opcode 0x80).
            pickle = read >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4
                     || read >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5;
        }
        if (pickle)
            throw new CheckpointLayoutException(
                $"{path}: PyTorch pickle checkpoints (.ckpt/.pt/.bin) are not supported, because loading them can run arbitrary code. " +
                "Convert it to safetensors first (e.g. with the safetensors convert tool or `safetensors.torch.save_file(torch.load(...)[\"state_dict\"], ...)` in a trusted environment).");
    }

    public void Dispose() => _owner?.Dispose();
}
