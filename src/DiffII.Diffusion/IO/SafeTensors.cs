using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.IO;

/// <summary>A file that is not valid safetensors, or a tensor that is not in it. The message names the file.</summary>
public sealed class SafeTensorsException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Where one tensor lives in a safetensors file.</summary>
/// <param name="Name">The key.</param>
/// <param name="DType">The file's dtype name: F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL.</param>
/// <param name="Shape">The shape; empty for a scalar.</param>
/// <param name="Begin">Start of the data, relative to the end of the header.</param>
/// <param name="End">End of the data (exclusive), relative to the end of the header.</param>
public sealed record SafeTensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>The number of elements; an <see cref="OverflowException"/> for a shape no tensor can have (a lying header's [2³², 2³²] would otherwise wrap to 0).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// Reads the safetensors format (8-byte little-endian header length, a JSON header, raw little-endian data) one
/// tensor at a time, so a 4 GB checkpoint never has to sit in memory twice. Every structural fault is reported
/// with the file's path; nothing is read past the header until a tensor is asked for.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Headers larger than this are refused: real files have headers of a few hundred kilobytes.</summary>
    const long MaxHeaderBytes = 100L * 1024 * 1024;

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    readonly FileStream _stream;
    readonly long _dataStart;
    readonly Dictionary<string, SafeTensorInfo> _tensors;

    SafeTensorsFile(string path, FileStream stream, long dataStart, Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path; _stream = stream; _dataStart = dataStart; _tensors = tensors; Metadata = metadata;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Keys in header order.</summary>
    public IReadOnlyCollection<string> Keys => _tensors.Keys;
    public IEnumerable<SafeTensorInfo> Tensors => _tensors.Values;
    public bool Contains(string key) => _tensors.ContainsKey(key);
    public bool TryGetInfo(string key, out SafeTensorInfo info) => _tensors.TryGetValue(key, out info!);

    public SafeTensorInfo this[string key] =>
        _tensors.TryGetValue(key, out var info) ? info : throw new SafeTensorsException($"{Path}: no tensor named '{key}'.");

    /// <summary>Opens and validates a safetensors file (header, dtypes, shapes and offsets).</summary>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Safetensors file not found: {path}", path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        try
        {
            long fileLength = stream.Length;
            if (fileLength < 8) throw new SafeTensorsException($"{path}: {fileLength} bytes is too short for a safetensors file (needs an 8-byte header length).");
            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (headerLength > MaxHeaderBytes || (long)headerLength > fileLength - 8)
                throw new SafeTensorsException($"{path}: header length {headerLength} does not fit the {fileLength}-byte file; this is not a safetensors file or it is truncated.");
            var headerBytes = new byte[headerLength];
            stream.ReadExactly(headerBytes);
            long dataStart = 8 + (long)headerLength;
            var (tensors, metadata) = ParseHeader(path, headerBytes, fileLength - dataStart);
            return new SafeTensorsFile(path, stream, dataStart, tensors, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        // The parser accepts invalid UTF-8 inside strings and fails only when a key is read; refuse it here, typed.
        try { StrictUtf8.GetCharCount(header); }
        catch (DecoderFallbackException e) { throw new SafeTensorsException($"{path}: the header is not valid UTF-8 text ({e.Message}).", e); }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new SafeTensorsException($"{path}: the header is not valid JSON ({e.Message}).", e); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsException($"{path}: the header is not a JSON object.");

        var tensors = new Dictionary<string, SafeTensorInfo>();
        var metadata = new Dictionary<string, string>();
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            if (property.Name == "__metadata__")
            {
                if (property.Value.ValueKind != JsonValueKind.Object)
                    throw new SafeTensorsException($"{path}: __metadata__ must be an object of strings.");
                foreach (var m in property.Value.EnumerateObject())
                    metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                continue;
            }
            tensors[property.Name] = ParseEntry(path, property, dataLength);
        }

        // Overlapping tensors would mean a corrupt or hostile file.
        long previousEnd = 0; string? previous = null;
        foreach (var t in tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin < previousEnd)
                throw new SafeTensorsException($"{path}: tensors '{previous}' and '{t.Name}' overlap in the data section.");
            previousEnd = t.End; previous = t.Name;
        }
        return (tensors, metadata);
    }

    static SafeTensorInfo ParseEntry(string path, JsonProperty property, long dataLength)
    {
        string key = property.Name;
        try
        {
            var e = property.Value;
            string dtype = e.GetProperty("dtype").GetString() ?? "";
            long[] shape = e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            long[] offsets = e.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            if (offsets.Length != 2) throw new SafeTensorsException($"{path}: tensor '{key}' has {offsets.Length} data_offsets; expected 2.");
            if (shape.Any(d => d < 0)) throw new SafeTensorsException($"{path}: tensor '{key}' has a negative dimension in its shape.");
            int elementSize = ElementSize(dtype) ?? throw new SafeTensorsException($"{path}: tensor '{key}' has unsupported dtype '{dtype}'.");
            var info = new SafeTensorInfo(key, dtype, shape, offsets[0], offsets[1]);
            if (info.Begin < 0 || info.End < info.Begin || info.End > dataLength)
                throw new SafeTensorsException($"{path}: tensor '{key}' claims bytes {info.Begin}..{info.End} but the data section has {dataLength} bytes (truncated file?).");
            long expected = checked(info.ElementCount * elementSize);
            if (info.End - info.Begin != expected)
                throw new SafeTensorsException($"{path}: tensor '{key}' ({dtype} {info.ShapeText}) needs {expected} bytes but its offsets span {info.End - info.Begin}.");
            return info;
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
        {
            throw new SafeTensorsException($"{path}: tensor '{key}' has a malformed header entry ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Reads one tensor onto the CPU in the file's dtype, then casts it to <paramref name="dtype"/> and moves it to
    /// <paramref name="device"/> when those are given.
    /// </summary>
    public Tensor Load(string key, ScalarType? dtype = null, Device? device = null)
    {
        var info = this[key];
        var fileType = ToScalarType(info.DType);
        long byteCount = info.End - info.Begin;
        if (byteCount > int.MaxValue)
            throw new SafeTensorsException($"{Path}: tensor '{key}' is {byteCount} bytes; tensors over 2 GiB are not supported.");
        var tensor = empty(info.Shape, dtype: fileType);
        try
        {
            lock (_stream)
            {
                _stream.Seek(_dataStart + info.Begin, SeekOrigin.Begin);
                if (byteCount > 0) _stream.ReadExactly(tensor.bytes);
            }
            if (!BitConverter.IsLittleEndian)
                throw new PlatformNotSupportedException("safetensors data is little-endian; big-endian machines are not supported.");
            if ((dtype is null || dtype == fileType) && (device is null || device.type == DeviceType.CPU)) return tensor;
            using (tensor)
                return tensor.to(dtype ?? fileType, device ?? CPU);
        }
        catch (EndOfStreamException e)
        {
            tensor.Dispose();
            throw new SafeTensorsException($"{Path}: the file ended while reading tensor '{key}' (truncated file?).", e);
        }
    }

    /// <summary>Writes tensors to <paramref name="path"/> atomically (a temporary file renamed into place).</summary>
    /// <remarks>Tensors are written in key order, the layout the reference implementation produces.</remarks>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var items = tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var duplicate = items.GroupBy(kv => kv.Key).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Tensor '{duplicate.Key}' is given twice.", nameof(tensors));

        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (key, tensor) in items)
        {
            long bytes = tensor.NumberOfElements * tensor.ElementSize;
            header[key] = new Dictionary<string, object>
            {
                ["dtype"] = ToFileDType(tensor.dtype, key),
                ["shape"] = tensor.shape,
                ["data_offsets"] = new[] { offset, offset + bytes },
            };
            offset += bytes;
        }
        byte[] json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padding = (8 - json.Length % 8) % 8; // keeps the data 8-byte aligned, as the reference writer does
        var headerBytes = new byte[json.Length + padding];
        json.CopyTo(headerBytes, 0);
        headerBytes.AsSpan(json.Length).Fill((byte)' ');

        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        string temp = path + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                Span<byte> lengthBytes = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)headerBytes.Length);
                stream.Write(lengthBytes);
                stream.Write(headerBytes);
                foreach (var (_, tensor) in items)
                {
                    if (tensor.NumberOfElements == 0) continue;
                    using var cpu = tensor.detach().to(CPU).contiguous();
                    stream.Write(cpu.bytes);
                }
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

    /// <summary>Reads every tensor of a file (for small files: LoRA weights, embeddings, test goldens).</summary>
    public static Dictionary<string, Tensor> LoadAll(string path, ScalarType? dtype = null, Device? device = null)
    {
        using var file = Open(path);
        return file.Keys.ToDictionary(k => k, k => file.Load(k, dtype, device));
    }

    public static ScalarType ToScalarType(string dtype) => dtype switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new SafeTensorsException($"Unsupported safetensors dtype '{dtype}'."),
    };

    /// <summary>The safetensors dtype name of a TorchSharp dtype; the error names the tensor.</summary>
    internal static string ToFileDType(ScalarType type, string key) => type switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new ArgumentException($"Tensor '{key}' has dtype {type}, which safetensors cannot store."),
    };

    static int? ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" => 8,
        "F32" or "I32" => 4,
        "F16" or "BF16" or "I16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => null,
    };

    public void Dispose() => _stream.Dispose();
}
