using System.Text.Json;

namespace DiffII.Storage;

/// <summary>
/// Reads the small JSON files a run writes and a later run reads back (concepts, checkpoints' states, fit.json,
/// results, model cards): an empty or damaged one is an error that names the file and says what to do, instead of a
/// bare <see cref="JsonException"/> or a null that fails later.
/// </summary>
public static class JsonFile
{
    /// <summary>The file's content, or null when the file does not exist.</summary>
    /// <exception cref="InvalidDataException">The file is empty, is not valid JSON for <typeparamref name="T"/>, or holds null.</exception>
    public static T? Read<T>(string path, JsonSerializerOptions? options = null) where T : class
    {
        if (!File.Exists(path)) return null;
        string text = File.ReadAllText(path);
        if (text.Trim().Length == 0)
            throw new InvalidDataException($"{path} is empty (0 bytes of JSON), probably cut short by a crash or a full disk; delete it and run again (the work it describes is redone or re-checked).");
        try { return JsonSerializer.Deserialize<T>(text, options) ?? throw new JsonException("it holds null"); }
        catch (JsonException e)
        { throw new InvalidDataException($"{path} is damaged ({e.Message}); delete it and run again (the work it describes is redone or re-checked).", e); }
    }

    /// <summary>The file's content; a missing file is an error too.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">As <see cref="Read{T}"/>.</exception>
    public static T ReadExisting<T>(string path, JsonSerializerOptions? options = null) where T : class =>
        Read<T>(path, options) ?? throw new FileNotFoundException($"{path} does not exist.", path);
}
