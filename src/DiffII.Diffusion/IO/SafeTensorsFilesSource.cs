using System.Text.Json;
using static TorchSharp.torch;

namespace DiffII.Diffusion.IO;

/// <summary>
/// A checkpoint whose layout is not what was expected: an unknown single-file layout, a missing component folder or
/// file, pickle-only weights, a malformed model_index.json or shard index. The message names the path.
/// </summary>
public sealed class CheckpointLayoutException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The tensors of one or more safetensors files seen as one source: a single weights file, or the shards listed by a
/// <c>*.safetensors.index.json</c> (its <c>weight_map</c> names the shard of every key). Files stay open and tensors
/// are read one at a time, so a sharded 10 GB model never has to fit in memory.
/// </summary>
public sealed class SafeTensorsFilesSource : ITensorSource, IDisposable
{
    readonly List<SafeTensorsFile> _files;
    readonly Dictionary<string, SafeTensorsFile> _fileOfKey;
    readonly List<string> _keys;

    SafeTensorsFilesSource(string name, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> fileOfKey, List<string> keys)
    {
        Name = name; _files = files; _fileOfKey = fileOfKey; _keys = keys;
    }

    /// <summary>The weights file, or the index file for sharded weights.</summary>
    public string Name { get; }
    public IEnumerable<string> Keys => _keys;
    /// <summary>The safetensors files this source reads (one, or every shard).</summary>
    public IReadOnlyList<string> FilePaths => _files.Select(f => f.Path).ToList();

    public bool TryGetShape(string key, out long[] shape)
    {
        bool found = _fileOfKey.TryGetValue(key, out var file);
        shape = found ? file![key].Shape : [];
        return found;
    }

    /// <summary>The header entry of <paramref name="key"/> (dtype, shape) without reading its data.</summary>
    public bool TryGetInfo(string key, out SafeTensorInfo info)
    {
        if (_fileOfKey.TryGetValue(key, out var file)) return file.TryGetInfo(key, out info);
        info = null!;
        return false;
    }

    public Tensor Load(string key) =>
        _fileOfKey.TryGetValue(key, out var file) ? file.Load(key) : throw new SafeTensorsException($"{Name}: no tensor named '{key}'.");

    /// <summary>
    /// Opens a <c>.safetensors</c> file, or every shard of a <c>*.safetensors.index.json</c> (shard names are resolved
    /// beside the index).
    /// </summary>
    public static SafeTensorsFilesSource Open(string path)
    {
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return OpenIndex(path);
        var file = SafeTensorsFile.Open(path);
        return new SafeTensorsFilesSource(path, [file], file.Keys.ToDictionary(k => k, _ => file), [.. file.Keys]);
    }

    static SafeTensorsFilesSource OpenIndex(string indexPath)
    {
        if (!File.Exists(indexPath)) throw new FileNotFoundException($"Shard index not found: {indexPath}", indexPath);
        var weightMap = ReadWeightMap(indexPath);
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var files = new List<SafeTensorsFile>();
        try
        {
            var byShard = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (string shard in weightMap.Values.Distinct(StringComparer.Ordinal))
            {
                if (shard.Contains('/') || shard.Contains('\\') || shard is "." or "..")
                    throw new CheckpointLayoutException($"{indexPath}: shard name '{shard}' must be a file name beside the index.");
                string shardPath = System.IO.Path.Combine(directory, shard);
                if (!File.Exists(shardPath))
                    throw new CheckpointLayoutException($"{indexPath}: the weight_map names shard '{shard}', but {shardPath} does not exist.");
                var file = SafeTensorsFile.Open(shardPath);
                files.Add(file);
                byShard[shard] = file;
            }

            var fileOfKey = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            var keys = new List<string>();
            foreach (var (key, shard) in weightMap)
            {
                var file = byShard[shard];
                if (!file.Contains(key))
                    throw new CheckpointLayoutException($"{indexPath}: the weight_map puts '{key}' in {shard}, but that file has no such tensor.");
                fileOfKey[key] = file;
                keys.Add(key);
            }
            // A tensor in a shard that the map does not list would be silently dropped; say so instead.
            foreach (var file in files)
            {
                string? unlisted = file.Keys.FirstOrDefault(k => !fileOfKey.ContainsKey(k));
                if (unlisted is not null)
                    throw new CheckpointLayoutException($"{indexPath}: shard {System.IO.Path.GetFileName(file.Path)} holds '{unlisted}', which the weight_map does not list (stale index?).");
            }
            return new SafeTensorsFilesSource(indexPath, files, fileOfKey, keys);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Reads the <c>weight_map</c> (key → shard file name) of a shard index.</summary>
    internal static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointLayoutException($"{indexPath}: a shard index needs a \"weight_map\" object (tensor name → shard file).");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(entry.Value.GetString()))
                    throw new CheckpointLayoutException($"{indexPath}: weight_map entry '{entry.Name}' must be a shard file name.");
                result[entry.Name] = entry.Value.GetString()!;
            }
            if (result.Count == 0) throw new CheckpointLayoutException($"{indexPath}: the weight_map is empty.");
            return result;
        }
        catch (JsonException e)
        {
            throw new CheckpointLayoutException($"{indexPath}: not valid JSON ({e.Message}).", e);
        }
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}

/// <summary>
/// One tensor of a key-mapped view: its key and shape in the view, and how to produce it from the underlying source
/// (possibly reshaped, split or synthesised). Nothing is read until <see cref="Load"/>.
/// </summary>
internal sealed record MappedTensor(string Key, long[] Shape, string Origin, Func<Tensor> Load);

/// <summary>A renamed/reshaped view of another source, built from <see cref="MappedTensor"/> entries.</summary>
internal sealed class MappedTensorSource : ITensorSource
{
    readonly Dictionary<string, MappedTensor> _entries;
    readonly List<string> _keys;

    public MappedTensorSource(string name, IEnumerable<MappedTensor> entries)
    {
        Name = name;
        _entries = new Dictionary<string, MappedTensor>(StringComparer.Ordinal);
        _keys = [];
        foreach (var e in entries)
        {
            if (!_entries.TryAdd(e.Key, e))
                throw new CheckpointLayoutException($"{name}: both '{_entries[e.Key].Origin}' and '{e.Origin}' map to '{e.Key}'.");
            _keys.Add(e.Key);
        }
    }

    public string Name { get; }
    public IEnumerable<string> Keys => _keys;
    public int Count => _keys.Count;
    internal IReadOnlyDictionary<string, MappedTensor> Entries => _entries;

    public bool TryGetShape(string key, out long[] shape)
    {
        bool found = _entries.TryGetValue(key, out var e);
        shape = found ? e!.Shape : [];
        return found;
    }

    public Tensor Load(string key)
    {
        if (!_entries.TryGetValue(key, out var e)) throw new KeyNotFoundException($"{Name}: no tensor named '{key}'.");
        var t = e.Load();
        if (!t.shape.SequenceEqual(e.Shape))
        {
            string got = StateDictLoader.Shape(t.shape);
            t.Dispose();
            throw new CheckpointLayoutException($"{Name}: '{key}' (from '{e.Origin}') was announced as {StateDictLoader.Shape(e.Shape)} but loaded as {got}.");
        }
        return t;
    }
}
