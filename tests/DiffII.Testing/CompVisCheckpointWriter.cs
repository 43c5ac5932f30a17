using System.Buffers.Binary;
using System.Text.Json;
using DiffII.Diffusion.IO;
using static TorchSharp.torch;

namespace DiffII.Testing;

/// <summary>Options for <see cref="CompVisCheckpointWriter.Save"/>.</summary>
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
/// Writes diffusers-layout components as one original (CompVis) single-file checkpoint, the inverse of
/// <see cref="SingleFileCheckpoint"/>'s key map. Only tests need it: they build single files from small models and
/// check the reader round-trips them.
/// </summary>
public static class CompVisCheckpointWriter
{
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
            var (tensors, unmapped) = OriginalKeyMap.ToOriginal(component, source, options.TextEncoderLayout);
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
