using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using DiffII.Augmentation;
using DiffII.Diffusion.Runtime;
using DiffII.TinyWorld.Pretraining;

namespace DiffII.Cli;

/// <summary>
/// How every numeric option of every command is read: the same in every locale (a decimal point, never a decimal
/// comma or a thousands separator: under de_DE "1.5" must not become 15), finite (no NaN, no ±Infinity), and within
/// one range per option name, so an option means the same, with the same bounds, wherever it appears. Installed
/// once over the whole command tree, so a new option cannot miss it.
/// </summary>
public static class NumericOptions
{
    /// <summary>
    /// An option's accepted range; <paramref name="MinOpen"/>: the minimum itself is excluded; <paramref name="Only"/>:
    /// the few values within it that are accepted, when not all are.
    /// </summary>
    public sealed record Range(double Min, double Max, bool MinOpen = false, bool MaxOpen = false, string? Why = null, double[]? Only = null)
    {
        public bool Contains(double v) => (MinOpen ? v > Min : v >= Min) && (MaxOpen ? v < Max : v <= Max) && (Only is null || Only.Contains(v));
        public string Describe() => Only is not null
            ? string.Join(" or ", Only.Select(v => v.ToString(CultureInfo.InvariantCulture))) + Why
            : Invariant($"{(MinOpen ? "above" : "at least")} {Min} and {(MaxOpen ? "below" : "at most")} {Max}{Why}");
    }

    /// <summary>The range of each numeric option, by any of its names.</summary>
    public static readonly IReadOnlyDictionary<string, Range> Ranges = new Dictionary<string, Range>(StringComparer.Ordinal)
    {
        ["--learn-steps"] = new(1, OptionLimits.MaxLearnSteps),
        ["--lora-rank"] = new(1, OptionLimits.MaxLoraRank),
        ["--batch"] = new(1, OptionLimits.MaxBatch),
        ["--inversion-steps"] = new(1, 1000, Why: " (and at most the model's training timesteps)"),
        ["--sample-steps"] = new(1, 1000, Why: " (and at most the model's training timesteps)"),
        ["--expansion"] = new(0, OptionLimits.MaxExpansion, MinOpen: true),
        ["--target-count"] = new(1, OptionLimits.MaxTargetCount),
        ["--split"] = new(0, 1),
        ["--guidance"] = new(0, OptionLimits.MaxGuidance),
        ["--caption-images"] = new(1, 10_000),
        ["--suffix-count"] = new(1, 100),
        ["--test-fraction"] = new(0, 1, MinOpen: true, MaxOpen: true),
        ["--test-per-class"] = new(1, 100_000),
        ["--reference-per-class"] = new(0, 100_000),
        ["--vae-steps"] = new(1, 10_000_000),
        ["--latent-channels"] = new(1, 64),
        ["--latent-size"] = new(8, 16, Only: [.. TinyModelConfigs.LatentSizes.Select(size => (double)size)]),
        ["--unet-steps"] = new(1, 10_000_000),
        ["--vae-learning-rate"] = new(0, 1, MinOpen: true),
        ["--unet-learning-rate"] = new(0, 1, MinOpen: true),
        ["--judge-steps"] = new(1, 10_000_000),
        ["--samples-per-kind"] = new(0, 10_000),
        ["--concept-samples"] = new(0, 10_000),
        ["--threads"] = new(1, ThreadPolicy.MaxThreads),
        ["--seed"] = new(long.MinValue, long.MaxValue),
    };

    /// <summary>The range of <paramref name="option"/> (by its name or an alias), or null.</summary>
    public static Range? RangeOf(Option option)
    {
        foreach (var name in option.Aliases.Prepend(option.Name))
            if (Ranges.TryGetValue(name, out var range)) return range;
        return null;
    }

    /// <summary>Installs the invariant parser and the range check on every numeric option under <paramref name="root"/>.</summary>
    public static void Install(Command root)
    {
        foreach (var option in root.Options) Install(option);
        foreach (var command in root.Subcommands) Install(command);
    }

    static void Install(Option option)
    {
        var range = RangeOf(option);
        switch (option)
        {
            case Option<int> o: o.CustomParser = r => Parse(r, o, range, whole: true, o.DefaultValueFactory, v => (int)v); break;
            case Option<int?> o: o.CustomParser = r => Parse(r, o, range, whole: true, o.DefaultValueFactory, v => (int?)(int)v); break;
            case Option<long> o: o.CustomParser = r => Parse(r, o, range, whole: true, o.DefaultValueFactory, v => (long)v, longs: true); break;
            case Option<long?> o: o.CustomParser = r => Parse(r, o, range, whole: true, o.DefaultValueFactory, v => (long?)(long)v, longs: true); break;
            case Option<double> o: o.CustomParser = r => Parse(r, o, range, whole: false, o.DefaultValueFactory, v => v); break;
            case Option<double?> o: o.CustomParser = r => Parse(r, o, range, whole: false, o.DefaultValueFactory, v => (double?)v); break;
        }
    }

    static T Parse<T>(ArgumentResult result, Option option, Range? range, bool whole, Func<ArgumentResult, T>? fallback, Func<double, T> convert, bool longs = false)
    {
        if (result.Tokens.Count == 0) return fallback is null ? default! : fallback(result);
        string text = result.Tokens[^1].Value;
        string name = option.Name;
        if (longs)
        {
            if (!long.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
            {
                result.AddError(Invariant($"{name} takes a whole number between {long.MinValue} and {long.MaxValue}; got '{text}'."));
                return default!;
            }
            // Longs (seeds) take any whole number; converting through double would round them.
            return (T)(object)l;
        }
        if (ReadNumber(text, whole) is not { } value)
        {
            result.AddError(Problem(name, text, whole, range));
            return default!;
        }
        if (range is not null && !range.Contains(value))
        {
            result.AddError(Invariant($"{name} must be {range.Describe()}; got {text}."));
            return default!;
        }
        if (whole && (value < int.MinValue || value > int.MaxValue))
        {
            result.AddError(Invariant($"{name} is out of range; got {text}."));
            return default!;
        }
        return convert(value);
    }

    /// <summary>A finite number written the invariant way (digits, one '.', an exponent), or null.</summary>
    public static double? ReadNumber(string text, bool whole)
    {
        text = text.Trim();
        var style = whole ? NumberStyles.AllowLeadingSign : NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent;
        if (!double.TryParse(text, style, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v)) return null;
        return v;
    }

    static string Problem(string name, string text, bool whole, Range? range)
    {
        string t = text.Trim();
        string bounds = range is null ? "" : Invariant($" ({range.Describe()})");
        if (t.Contains(','))
            return Invariant($"{name} takes a number written with a decimal point, e.g. 1.5, whatever the locale (no decimal comma or thousands separator); got '{text}'.");
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && !double.IsFinite(v))
            return Invariant($"{name} must be a finite number{bounds}; got '{text}'.");
        if (whole && double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            return Invariant($"{name} takes a whole number{bounds}; got '{text}'.");
        return Invariant($"{name} takes a number{bounds}; got '{text}'.");
    }

    static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
