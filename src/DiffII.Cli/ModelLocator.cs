using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Runtime;
using static TorchSharp.torch;

namespace DiffII.Cli;

/// <summary>Finds the Stable Diffusion model to use and loads it on the requested device and dtype.</summary>
public static class ModelLocator
{
    public const string EnvironmentVariable = "DIFFII_MODEL";
    /// <summary>Where the embedded tiny model lives, relative to the repository root or the installed tool's folder.</summary>
    public static readonly string EmbeddedModelFolder = Path.Combine("models", "tiny-sd");

    /// <summary>
    /// The model path: <paramref name="given"/> (--model) if set, else <paramref name="environment"/> (DIFFII_MODEL),
    /// else the embedded tiny model found in <paramref name="baseDirectory"/> or a folder above it.
    /// </summary>
    public static string Resolve(string? given, string? environment, string baseDirectory)
    {
        if (!string.IsNullOrWhiteSpace(given))
        {
            string path = Path.GetFullPath(given);
            if (!File.Exists(path) && !Directory.Exists(path))
                throw new CliException($"The model {path} does not exist; pass --model with a diffusers folder (model_index.json) or a single-file checkpoint (.safetensors, .ckpt).");
            return path;
        }
        if (!string.IsNullOrWhiteSpace(environment))
        {
            string path = Path.GetFullPath(environment);
            if (!File.Exists(path) && !Directory.Exists(path))
                throw new CliException($"{EnvironmentVariable} points to {path}, which does not exist; fix it or pass --model DIR|FILE.");
            return path;
        }
        for (var dir = new DirectoryInfo(baseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, EmbeddedModelFolder);
            if (File.Exists(Path.Combine(candidate, "model_index.json"))) return candidate;
        }
        throw new CliException($"No model: the embedded tiny model ({EmbeddedModelFolder}) was not found in {baseDirectory} or above, and {EnvironmentVariable} is not set; pass --model DIR|FILE (a diffusers folder or a single-file checkpoint).");
    }

    public static ScalarType ParseDType(string text) => text.ToLowerInvariant() switch
    {
        "float32" or "fp32" => ScalarType.Float32,
        "float16" or "fp16" => ScalarType.Float16,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        _ => throw new CliException($"'{text}' is not a dtype; use float32, float16 or bfloat16."),
    };

    /// <summary>Parses and checks a --device value; a CUDA request on a machine or build without CUDA is refused with what to do.</summary>
    public static Device ParseDevice(string text)
    {
        try { return TorchRuntime.ParseDevice(text); }
        catch (TorchRuntimeException e) when (text.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            throw new CliException($"--device {text} was requested, but CUDA is not available (this build's TorchSharp backend is {TorchRuntime.BuildBackend}, or the machine has no usable GPU driver); " +
                                   "use --device cpu, or build with -p:TorchBackend=cuda on a machine with CUDA.", e);
        }
    }

    /// <summary>Loads the model; the device string is checked first (a CUDA request without CUDA is refused here).</summary>
    public static StableDiffusion Load(string path, string device, string dtype, string? tokenizerFolder)
    {
        var parsedDevice = ParseDevice(device);
        var scalar = ParseDType(dtype);
        return StableDiffusion.Load(path, new StableDiffusionLoadOptions { Device = parsedDevice, DType = scalar, TokenizerFolder = tokenizerFolder });
    }
}
