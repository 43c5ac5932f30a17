using System.Text.Json;
using System.Text.Json.Serialization;

#pragma warning disable CS1573 // only the parameters that need explaining get a <param> tag

namespace DiffII.Diffusion.Models;

/// <summary>A config value that diffusers accepts either as one value for every block or as a list with one per block.</summary>
[JsonConverter(typeof(OneOrManyConverterFactory))]
public sealed class OneOrMany<T> where T : struct
{
    readonly T[] _values;

    OneOrMany(T[] values, bool isShared) { _values = values; IsShared = isShared; }

    /// <summary>True when the config gave a single value (applied to every block).</summary>
    public bool IsShared { get; }
    public IReadOnlyList<T> Values => _values;

    public static OneOrMany<T> Shared(T value) => new([value], true);
    public static OneOrMany<T> Each(params T[] values) => new([.. values], false);
    public static implicit operator OneOrMany<T>(T value) => Shared(value);

    /// <summary>One value per block; a list must have exactly <paramref name="blockCount"/> entries.</summary>
    /// <exception cref="ArgumentException">The list length differs from the block count (names <paramref name="key"/>).</exception>
    public T[] Expand(int blockCount, string key)
    {
        if (IsShared) return Enumerable.Repeat(_values[0], blockCount).ToArray();
        if (_values.Length != blockCount)
            throw new ArgumentException($"Config key '{key}' has {_values.Length} entries [{string.Join(", ", _values)}], but there are {blockCount} blocks.");
        return [.. _values];
    }

    /// <summary>The value as JSON would write it (a number, true/false, or a list).</summary>
    public override string ToString() => IsShared ? Format(_values[0]) : "[" + string.Join(", ", _values.Select(Format)) + "]";

    static string Format(T value) => value is bool b ? (b ? "true" : "false") : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
}

sealed class OneOrManyConverterFactory : JsonConverterFactory
{
    public override bool CanConvert(Type typeToConvert) => typeToConvert.IsGenericType && typeToConvert.GetGenericTypeDefinition() == typeof(OneOrMany<>);

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(OneOrManyConverter<>).MakeGenericType(typeToConvert.GetGenericArguments()[0]))!;
}

sealed class OneOrManyConverter<T> : JsonConverter<OneOrMany<T>> where T : struct
{
    public override OneOrMany<T> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        // Values are read here rather than through a nested JsonSerializer call, so an error keeps the config key in its path.
        if (reader.TokenType != JsonTokenType.StartArray) return OneOrMany<T>.Shared(ReadOne(ref reader));
        var values = new List<T>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) values.Add(ReadOne(ref reader));
        if (values.Count == 0) throw new JsonException("expected a value or a non-empty list, got an empty list");
        return OneOrMany<T>.Each([.. values]);
    }

    static T ReadOne(ref Utf8JsonReader reader)
    {
        object value = typeof(T) == typeof(int) ? reader.GetInt32()
            : typeof(T) == typeof(bool) ? reader.GetBoolean()
            : typeof(T) == typeof(double) ? reader.GetDouble()
            : throw new NotSupportedException($"OneOrMany<{typeof(T).Name}> cannot be read from JSON.");
        return (T)value;
    }

    public override void Write(Utf8JsonWriter writer, OneOrMany<T> value, JsonSerializerOptions options)
    {
        if (value.IsShared) JsonSerializer.Serialize(writer, value.Values[0], options);
        else JsonSerializer.Serialize(writer, value.Values, options);
    }
}

/// <summary>Reads diffusers config.json files into config records, with errors that name the file and the key.</summary>
static class ModelConfigJson
{
    static readonly JsonSerializerOptions Options = new()
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
    };

    public static T Parse<T>(string json, string sourceName) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options)
                   ?? throw new InvalidDataException($"{sourceName}: the config is JSON null, expected an object.");
        }
        catch (JsonException e)
        {
            string key = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : $" at key '{e.Path.TrimStart('$', '.')}'";
            throw new InvalidDataException($"{sourceName}: invalid {typeof(T).Name}{key}: {e.Message}", e);
        }
    }

    public static T ReadFile<T>(string path) where T : class
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Config file not found: {path}", path);
        return Parse<T>(File.ReadAllText(path), path);
    }

    public static string Write<T>(T config) => JsonSerializer.Serialize(config, Options);

    /// <summary>The exception for a config value this implementation does not support.</summary>
    public static NotSupportedException Unsupported(string model, string key, object? value, string supported) =>
        new($"{model} config: {key} = {Describe(value)} is not supported (supported: {supported}).");

    static string Describe(object? value) => value switch
    {
        null => "null",
        string s => $"\"{s}\"",
        bool b => b ? "true" : "false",
        IEnumerable<string> list => "[" + string.Join(", ", list.Select(s => $"\"{s}\"")) + "]",
        _ => value.ToString() ?? "?",
    };
}
