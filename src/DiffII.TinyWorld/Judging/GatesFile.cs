using System.Text.Json;
using System.Text.Json.Nodes;
using DiffII.Storage;

namespace DiffII.TinyWorld.Judging;

/// <summary>
/// A generator's gates file (models/tiny-sd/gates.json): one number per gate, in percent, written by several
/// commands (judge-generator, tiny-experiment --gates). Each merges its own keys and leaves the others as they are.
/// </summary>
public static class GatesFile
{
    /// <summary>Sets <paramref name="values"/> in the JSON object at <paramref name="path"/> (made when missing); null values are skipped.</summary>
    /// <exception cref="InvalidDataException">The file is there but is not a JSON object (<see cref="JsonFile.Read{T}"/>); it is left untouched.</exception>
    public static void Merge(string path, IEnumerable<KeyValuePair<string, JsonNode?>> values)
    {
        // Empty, cut short or not an object: an error naming the file, which is left as it is.
        var merged = JsonFile.Read<JsonObject>(path) ?? [];
        foreach (var (key, value) in values)
            if (value is not null) merged[key] = value.DeepClone();
        AtomicFile.WriteAllText(path, merged.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Merges the properties of <paramref name="record"/> as <see cref="JsonSerializer"/> names them.</summary>
    /// <remarks>Named apart from <see cref="Merge"/>: as an overload, a JsonObject argument bound to this generic one and recursed.</remarks>
    public static void MergeRecord<T>(string path, T record) =>
        Merge(path, (IEnumerable<KeyValuePair<string, JsonNode?>>)JsonSerializer.SerializeToNode(record)!.AsObject());
}
