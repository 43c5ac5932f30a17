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

/// <summary>Options for <see cref="SingleFileCheckpoint.Save"/>.</summary>
public sealed record SingleFileSaveOptions
{
    /// <summary>How to store the text encoder: <see cref="TextEncoderLayout.Clip"/> for SD 1.x, <see cref="TextEncoderLayout.OpenClip"/> for SD 2.x.</summary>
    public TextEncoderLayout TextEncoderLayout { get; init; } = TextEncoderLayout.Clip;

    /// <summary>
    /// Tensors under their original names, written as they are: e.g. the DDPM buffers, or for SD 2.x the final OpenCLIP
    /// resblock, <c>text_projection</c> and <c>logit_scale</c>, which diffusers drops but the original model has.
    /// </summary>
    public ITensorSource? ExtraTensors { get; init; }

    /// <summary>Extra <c>__metadata__</c> entries (<c>format: pt</c> is always written).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
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

    // ───────────────────────────── writing ─────────────────────────────

    /// <summary>
    /// Writes diffusers-layout components as one original-layout single-file checkpoint (atomically: a temporary file
    /// renamed into place). Tensors are streamed one at a time in each tensor's own dtype; every tensor is read twice
    /// (once to learn its dtype for the header, once to write it), so memory stays at one tensor.
    /// </summary>
    /// <exception cref="CheckpointLayoutException">A component key has no original name, or a key is produced twice.</exception>
    public static void Save(string path, ITensorSource unet, ITensorSource vae, ITensorSource textEncoder, SingleFileSaveOptions? options = null)
    {
        options ??= new SingleFileSaveOptions();
        var entries = new List<MappedTensor>();
        var problems = new List<string>();
        foreach (var (component, source) in new[] { ("unet", unet), ("vae", vae), ("text_encoder", textEncoder) })
        {
            var (tensors, unmapped) = SingleFileKeyMap.ToOriginal(component, source, options.TextEncoderLayout);
            entries.AddRange(tensors);
            problems.AddRange(unmapped.Select(k => $"{source.Name}: '{k}' has no {component} counterpart in the original layout"));
        }
        if (problems.Count > 0)
            throw new CheckpointLayoutException($"Cannot write {path}: " + string.Join("; ", problems.Take(10)) + (problems.Count > 10 ? $"; ... {problems.Count} in all" : "") + ".");

        if (options.ExtraTensors is { } extra)
            foreach (string key in extra.Keys)
                entries.Add(new MappedTensor(key, extra.TryGetShape(key, out var s) ? s : [], $"{extra.Name}: {key}", () => extra.Load(key)));

        if (options.TextEncoderLayout == TextEncoderLayout.OpenClip)
        {
            // The reader drops the last OpenCLIP resblock (SD 2 uses the penultimate layer), so the file needs it.
            int layers = textEncoder.Keys.Where(k => k.StartsWith("text_model.encoder.layers.", StringComparison.Ordinal))
                .Select(k => int.Parse(k.Split('.')[3], System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(-1).Max() + 1;
            string finalBlock = $"{SingleFileKeyMap.OpenClipPrefix}transformer.resblocks.{layers}.attn.in_proj_weight";
            if (!entries.Any(e => e.Key == finalBlock))
                throw new CheckpointLayoutException(
                    $"Cannot write {path} with an OpenCLIP text encoder: SD 2 checkpoints hold one more resblock than the {layers} the diffusers " +
                    $"text encoder keeps (SD 2 conditions on the penultimate layer). Pass that block (e.g. '{finalBlock}' …) in ExtraTensors, taken from the original checkpoint.");
        }

        var duplicate = entries.GroupBy(e => e.Key).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new CheckpointLayoutException($"Cannot write {path}: '{duplicate.Key}' comes from both {string.Join(" and ", duplicate.Select(e => $"'{e.Origin}'"))}.");

        var metadata = new Dictionary<string, string>(options.Metadata ?? new Dictionary<string, string>()) { ["format"] = "pt" };
        WriteStreaming(path, entries, metadata);
    }

    static void WriteStreaming(string path, List<MappedTensor> entries, Dictionary<string, string> metadata)
    {
        var ordered = entries.OrderBy(e => e.Key, StringComparer.Ordinal).ToList();
        var dtypes = new ScalarType[ordered.Count];
        for (int i = 0; i < ordered.Count; i++)
        {
            using var scope = NewDisposeScope();
            var t = ordered[i].Load();
            if (!t.shape.SequenceEqual(ordered[i].Shape))
                throw new CheckpointLayoutException($"Cannot write {path}: '{ordered[i].Key}' (from '{ordered[i].Origin}') was announced as {StateDictLoader.Shape(ordered[i].Shape)} but loads as {StateDictLoader.Shape(t.shape)}.");
            dtypes[i] = t.dtype;
        }

        var buffer = new MemoryStream();
        var offsets = new long[ordered.Count + 1];
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) json.WriteString(k, v);
            json.WriteEndObject();
            for (int i = 0; i < ordered.Count; i++)
            {
                long bytes = ordered[i].Shape.Aggregate(1L, (a, b) => a * b) * ElementSize(dtypes[i]);
                offsets[i + 1] = offsets[i] + bytes;
                json.WriteStartObject(ordered[i].Key);
                json.WriteString("dtype", SafeTensorsFile.ToFileDType(dtypes[i], ordered[i].Key));
                json.WriteStartArray("shape");
                foreach (long d in ordered[i].Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offsets[i]);
                json.WriteNumberValue(offsets[i + 1]);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8); // keeps the data 8-byte aligned, as the reference writer does
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');

        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        string temp = path + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> lengthBytes = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)buffer.Length);
                stream.Write(lengthBytes);
                buffer.Position = 0;
                buffer.CopyTo(stream);
                for (int i = 0; i < ordered.Count; i++)
                {
                    using var scope = NewDisposeScope();
                    var t = ordered[i].Load();
                    if (t.dtype != dtypes[i] || !t.shape.SequenceEqual(ordered[i].Shape))
                        throw new CheckpointLayoutException($"Cannot write {path}: '{ordered[i].Key}' changed dtype or shape between two reads of its source.");
                    if (t.NumberOfElements == 0) continue;
                    var cpu = t.detach().cpu().contiguous();
                    stream.Write(cpu.bytes);
                }
                if (stream.Position != 8 + buffer.Length + offsets[^1])
                    throw new InvalidOperationException($"Writing {path}: wrote {stream.Position} bytes, the header promises {8 + buffer.Length + offsets[^1]}.");
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    static int ElementSize(ScalarType type) => type switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };
}
