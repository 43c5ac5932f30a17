using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.IO;

/// <summary>A weight file that does not fit the model: the message names the file, the key and both shapes.</summary>
public sealed class CheckpointMismatchException(string message) : Exception(message);

/// <summary>Something that can hand out named tensors: a safetensors file, a dictionary, a key-mapped view.</summary>
public interface ITensorSource
{
    /// <summary>Names the source in error messages (usually a file path).</summary>
    string Name { get; }
    IEnumerable<string> Keys { get; }
    bool TryGetShape(string key, out long[] shape);
    /// <summary>Returns a new tensor the caller disposes.</summary>
    Tensor Load(string key);
}

/// <summary>Tensors from a <see cref="SafeTensorsFile"/>, read one at a time.</summary>
public sealed class SafeTensorsSource(SafeTensorsFile file) : ITensorSource
{
    public string Name => file.Path;
    public IEnumerable<string> Keys => file.Keys;
    public bool TryGetShape(string key, out long[] shape)
    {
        bool found = file.TryGetInfo(key, out var info);
        shape = found ? info.Shape : [];
        return found;
    }
    public Tensor Load(string key) => file.Load(key);
}

/// <summary>Tensors already in memory (the caller keeps ownership; <see cref="Load"/> returns aliases).</summary>
public sealed class DictionarySource(string name, IReadOnlyDictionary<string, Tensor> tensors) : ITensorSource
{
    public string Name => name;
    public IEnumerable<string> Keys => tensors.Keys;
    public bool TryGetShape(string key, out long[] shape)
    {
        bool found = tensors.TryGetValue(key, out var t);
        shape = found ? t!.shape : [];
        return found;
    }
    public Tensor Load(string key) => tensors[key].alias();
}

/// <summary>Options for <see cref="StateDictLoader.Load"/>.</summary>
public sealed record StateDictLoadOptions
{
    /// <summary>Model keys that may be absent from the source (e.g. CLIP's position_ids buffer); they keep their initial value.</summary>
    public Func<string, bool> MayBeMissing { get; init; } = _ => false;
    /// <summary>Source keys the model does not have but that are known and harmless; any other extra key is an error.</summary>
    public Func<string, bool> MayBeExtra { get; init; } = _ => false;
}

/// <summary>
/// Copies weights into a module's parameters and buffers by state-dict key, strictly: every key the model has must
/// be in the source with the same shape, and the source may not hold keys the model lacks. A partial load is never
/// silent. Values are cast to each parameter's dtype and device as they are copied.
/// </summary>
public static class StateDictLoader
{
    /// <returns>The number of tensors copied.</returns>
    public static int Load(nn.Module module, ITensorSource source, StateDictLoadOptions? options = null)
    {
        options ??= new StateDictLoadOptions();
        var target = module.state_dict();
        var problems = new List<string>();

        foreach (var (key, parameter) in target)
        {
            if (!source.TryGetShape(key, out var shape))
            {
                if (!options.MayBeMissing(key)) problems.Add($"missing '{key}' (expected shape {Shape(parameter.shape)})");
                continue;
            }
            if (!shape.SequenceEqual(parameter.shape))
                problems.Add($"'{key}': the model expects shape {Shape(parameter.shape)}, the file has {Shape(shape)}");
        }
        var extra = source.Keys.Where(k => !target.ContainsKey(k) && !options.MayBeExtra(k)).ToList();
        problems.AddRange(extra.Select(k => $"unexpected '{k}' (the model has no such weight)"));
        if (problems.Count > 0)
        {
            const int shown = 12;
            string more = problems.Count > shown ? $"\n  ... and {problems.Count - shown} more" : "";
            throw new CheckpointMismatchException(
                $"{source.Name} does not fit {module.GetType().Name}: {problems.Count} problem(s):\n  " + string.Join("\n  ", problems.Take(shown)) + more);
        }

        int copied = 0;
        using (no_grad())
        {
            foreach (var (key, parameter) in target)
            {
                if (!source.TryGetShape(key, out _)) continue;
                using var scope = NewDisposeScope();
                var value = source.Load(key);
                parameter.copy_(value);
                copied++;
            }
        }
        return copied;
    }

    /// <summary>Opens a safetensors file and loads it into <paramref name="module"/>.</summary>
    public static int LoadFile(nn.Module module, string path, StateDictLoadOptions? options = null)
    {
        using var file = SafeTensorsFile.Open(path);
        return Load(module, new SafeTensorsSource(file), options);
    }

    internal static string Shape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
