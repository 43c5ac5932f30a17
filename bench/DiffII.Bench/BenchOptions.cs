using System.Globalization;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>A command-line mistake; the message names the option and what it accepts.</summary>
public sealed class BenchUsageException(string message) : Exception(message);

/// <summary>The benchmark's options (see <see cref="Usage"/>).</summary>
public sealed record BenchOptions
{
    public string Profile { get; init; } = "quick";
    public IReadOnlyList<string> Models { get; init; } = ["tiny", "sd15"];
    /// <summary>Pixel sizes for the SD architectures; null means each model's defaults (SD 1.5: 512 and 256). The tiny model always runs at its 32 px.</summary>
    public IReadOnlyList<int>? Resolutions { get; init; }
    public IReadOnlyList<int> Batches { get; init; } = [1, 2, 4, 8];
    public string Device { get; init; } = "cpu";
    public ScalarType DType { get; init; } = ScalarType.Float32;
    public string? Out { get; init; }
    public int? Threads { get; init; }
    public string? Shared { get; init; }
    /// <summary>Minutes each SD model × resolution section may take before remaining cases are skipped (and recorded as skipped).</summary>
    public double BudgetMinutes { get; init; } = 3;
    public IReadOnlySet<string> Sections { get; init; } = new HashSet<string>(AllSections);
    public int MemoryImages { get; init; } = 200;
    public int MatmulSize { get; init; } = 2048;

    public static readonly string[] AllSections = ["stages", "profile", "optimisations", "bf16", "scaling", "memory", "finetune"];

    public bool IsFull => Profile == "full";

    public const string Usage = """
        DiffII.Bench: stage timings, GFLOP/s against the machine's measured peak, memory, scaling and leaks.

          --profile quick|full        quick: small repetition counts and sizes (default); full: the committed numbers
          --model LIST                sd15, sd21, tiny or all (comma-separated; default tiny,sd15)
          --resolution LIST           pixel sizes for the SD models (default: sd15 512,256; sd21 512); tiny runs at 32
          --batches LIST              batch sizes (default 1,2,4,8)
          --device cpu|cuda[:N]       default cpu; cuda needs a build with -p:TorchBackend=cuda
          --dtype float32|float16|bfloat16   default float32 (float16 is refused on cpu)
          --threads N                 torch intra-op threads (default: torch's choice)
          --out DIR                   where results.json, results.csv, scaling.csv, memory.csv, summary.md go
          --shared DIR                the shared/ data folder with sd-configs and clip-tokenizer (default: found above the repo)
          --budget-minutes M          time budget per SD model × resolution section (default quick 3, full 14)
          --sections LIST             stages,profile,optimisations,bf16,scaling,memory,finetune (default all;
                                      bf16: float32 vs bfloat16 on the CPU, tiny model, speed and generated
                                      latents' error; finetune: the ResNet-18 trainer at 64/112/224 px)
          --memory-images N           images in the memory-flatness run (default quick 200, full 1000)
          --matmul N                  size of the peak matmul (default quick 2048, full 4096)
        """;

    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg is "--help" or "-h") throw new BenchUsageException(Usage);
            if (!arg.StartsWith("--", StringComparison.Ordinal)) throw new BenchUsageException($"Unexpected argument '{arg}'.\n\n{Usage}");
            string name = arg, value;
            int eq = arg.IndexOf('=');
            if (eq > 0) { name = arg[..eq]; value = arg[(eq + 1)..]; }
            else if (i + 1 < args.Count) value = args[++i];
            else throw new BenchUsageException($"Option {arg} needs a value.");
            values[name] = value;
        }
        string profile = values.GetValueOrDefault("--profile", "quick");
        if (profile is not ("quick" or "full")) throw new BenchUsageException($"--profile must be quick or full, not '{profile}'.");
        bool full = profile == "full";
        var options = new BenchOptions
        {
            Profile = profile,
            BudgetMinutes = full ? 14 : 3,
            MemoryImages = full ? 1000 : 200,
            MatmulSize = full ? 4096 : 2048,
        };
        foreach (var (name, value) in values)
        {
            options = name switch
            {
                "--profile" => options,
                "--model" => options with { Models = ParseModels(value) },
                "--resolution" => options with { Resolutions = ParseInts(name, value, min: 64, multipleOf: 64) },
                "--batches" => options with { Batches = ParseInts(name, value, min: 1) },
                "--device" => options with { Device = ParseDevice(value) },
                "--dtype" => options with { DType = ParseDType(value) },
                "--threads" => options with { Threads = ParseInts(name, value, min: 1).Single() },
                "--out" => options with { Out = value },
                "--shared" => options with { Shared = value },
                "--budget-minutes" => options with { BudgetMinutes = ParsePositive(name, value) },
                "--sections" => options with { Sections = ParseSections(value) },
                "--memory-images" => options with { MemoryImages = ParseInts(name, value, min: 16).Single() },
                "--matmul" => options with { MatmulSize = ParseInts(name, value, min: 64).Single() },
                _ => throw new BenchUsageException($"Unknown option {name}.\n\n{Usage}"),
            };
        }
        if (options.Device.StartsWith("cpu", StringComparison.Ordinal) && options.DType == ScalarType.Float16)
            throw new BenchUsageException("--dtype float16 is not measured on cpu (CPU kernels for half precision are slow reference code); use float32 on cpu, float16/bfloat16 on cuda.");
        return options;
    }

    static IReadOnlyList<string> ParseModels(string value)
    {
        var names = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0) throw new BenchUsageException("--model needs at least one of sd15, sd21, tiny, all.");
        var result = new List<string>();
        foreach (var n in names)
        {
            if (n == "all") { result.AddRange(BenchModels.Names); continue; }
            if (!BenchModels.Names.Contains(n)) throw new BenchUsageException($"--model: unknown model '{n}'; use sd15, sd21, tiny or all.");
            result.Add(n);
        }
        return result.Distinct().ToList();
    }

    static List<int> ParseInts(string option, string value, int min, int multipleOf = 1)
    {
        var result = new List<int>();
        foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n))
                throw new BenchUsageException($"{option}: '{part}' is not a whole number.");
            if (n < min) throw new BenchUsageException($"{option}: {n} is below the minimum {min}.");
            if (n % multipleOf != 0) throw new BenchUsageException($"{option}: {n} is not a multiple of {multipleOf}.");
            result.Add(n);
        }
        if (result.Count == 0) throw new BenchUsageException($"{option} needs a value.");
        return result.Distinct().ToList();
    }

    static double ParsePositive(string option, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d > 0
            ? d : throw new BenchUsageException($"{option}: '{value}' is not a positive number.");

    static string ParseDevice(string value) =>
        value == "cpu" || value == "cuda" || (value.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(value[5..], out int n) && n >= 0)
            ? value : throw new BenchUsageException($"--device must be cpu, cuda or cuda:N, not '{value}'.");

    static ScalarType ParseDType(string value) => value switch
    {
        "float32" or "fp32" => ScalarType.Float32,
        "float16" or "fp16" => ScalarType.Float16,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        _ => throw new BenchUsageException($"--dtype must be float32, float16 or bfloat16, not '{value}'."),
    };

    static HashSet<string> ParseSections(string value)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!AllSections.Contains(s)) throw new BenchUsageException($"--sections: unknown section '{s}'; use {string.Join(", ", AllSections)}.");
            set.Add(s);
        }
        if (set.Count == 0) throw new BenchUsageException("--sections needs at least one section.");
        return set;
    }
}
