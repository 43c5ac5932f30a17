using System.Runtime.InteropServices;
using DiffII.Build;
using TorchSharp;

namespace DiffII.Diffusion.Runtime;

/// <summary>Thrown when TorchSharp's native library cannot be loaded; the message names the cause and the fix.</summary>
public sealed class TorchRuntimeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Loads TorchSharp's native backend once and, when that fails, replaces TorchSharp's message (which blames a
/// missing libtorch whatever the cause) with what is really missing.
/// </summary>
public static class TorchRuntime
{
    static readonly Lock Gate = new();
    static bool _loaded;

    /// <summary>
    /// Initialises the native backend for <paramref name="device"/> (CPU by default). The first load also sets the
    /// library's thread policy (<see cref="ThreadPolicy.PreferPassiveWait"/>, <see cref="ThreadPolicy.LibraryDefault"/>),
    /// so ML.NET and library users share a machine as politely as the CLI does.
    /// </summary>
    /// <exception cref="TorchRuntimeException">The native library is missing or cannot be loaded.</exception>
    public static void EnsureLoaded(DeviceType device = DeviceType.CPU)
    {
        lock (Gate)
        {
            if (_loaded && device == DeviceType.CPU) return;
            bool first = !_loaded;
            if (first) ThreadPolicy.PreferPassiveWait();
            try
            {
                torch.InitializeDeviceType(device);
                if (first) NnpackSwitch.TryDisable();
                if (device == DeviceType.CPU) _loaded = true;
            }
            catch (Exception e) when (e is not TorchRuntimeException)
            {
                throw new TorchRuntimeException(Explain(device, e), e);
            }
            // After the try: a bad DIFFII_THREADS is the caller's error, named as such, not a failed native load.
            if (first && ThreadPolicy.LibraryDefault(torch.get_num_threads()) is int threads) torch.set_num_threads(threads);
        }
    }

    /// <summary>Parses "cpu", "cuda" or "cuda:1" and checks that the device is usable.</summary>
    public static torch.Device ParseDevice(string text)
    {
        torch.Device device;
        try { device = new torch.Device(text); }
        catch (Exception e) { throw new ArgumentException($"'{text}' is not a device; use cpu, cuda or cuda:N.", nameof(text), e); }
        EnsureLoaded(device.type);
        if (device.type == DeviceType.CUDA && !torch.cuda.is_available())
            throw new TorchRuntimeException(
                $"Device '{text}' was requested, but CUDA is not available: this build uses TorchBackend={BuildBackend} " +
                "or the machine has no usable GPU driver. Build with -p:TorchBackend=cuda on a machine with CUDA, or use --device cpu.");
        return device;
    }

    /// <summary>The backend this assembly's callers were built with, as far as the loaded files show.</summary>
    public static string BuildBackend =>
        File.Exists(Path.Combine(AppContext.BaseDirectory, "libtorch_cuda.so")) || File.Exists(Path.Combine(AppContext.BaseDirectory, "torch_cuda.dll")) ? "cuda" : "cpu";

    /// <summary>Builds the one clear message for a failed load.</summary>
    internal static string Explain(DeviceType device, Exception error, string? baseDirectory = null)
    {
        string baseDir = baseDirectory ?? AppContext.BaseDirectory;
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
            return $"TorchSharp could not initialise the {device} backend: {error.Message}. For CPU reference TorchSharp-cpu, for CUDA " +
                   "TorchSharp-cuda-linux or TorchSharp-cuda-windows (build with -p:TorchBackend=cuda).";
        string? lib = FindLibTorchSharp(baseDir);
        if (lib is null)
            return $"TorchSharp's native library libLibTorchSharp.so was found neither in {baseDir} nor in its runtimes/linux-*/native folders. " +
                   "Reference a TorchSharp backend package from the application project: TorchSharp-cpu (or TorchSharp-cuda-linux); " +
                   $"in this repository, set UsesTorchNative=true (see tests/Directory.Build.props). Requested device: {device}. Original error: {error.Message}";
        string? loader = LoaderError(lib);
        string? missing = MissingLibstdcxxVersions(lib, out string? libstdcxx);
        if (missing is not null)
            return $"TorchSharp's native library {lib} needs {missing} from libstdc++.so.6, which this system's {libstdcxx ?? "libstdc++"} does not define " +
                   "(Debian 12 and Ubuntu 22.04 ship GCC 12's libstdc++), so the loader refuses it" + (loader is null ? "" : $" (loader: {loader})") + ". " +
                   "The build targets of the DiffII.Diffusion package mark that requirement weak in the application's output; this copy was not patched. " +
                   "Reference DiffII.Diffusion (or DiffII / DiffII.MLNet) as a package and rebuild, without DiffIIWeakenTorchSharpGlibcxx=false; " +
                   "in this repository, build through the projects (they import build/TorchSharp.Native.targets). Do not upgrade the system libstdc++.";
        if (loader is not null)
            return $"TorchSharp's native library {lib} cannot be loaded: {loader}. If a libtorch library is named, reference the matching backend package " +
                   $"(TorchSharp-cpu, or TorchSharp-cuda-linux) from the application project. Requested device: {device}.";
        return $"TorchSharp could not initialise the {device} backend although {lib} loads: {error.Message}. For CPU reference TorchSharp-cpu, for CUDA " +
               "TorchSharp-cuda-linux (build with -p:TorchBackend=cuda).";
    }

    /// <summary>
    /// One line for diagnostics (diffii doctor): which libLibTorchSharp.so this application uses, and how its libstdc++
    /// version needs stand against this system's libstdc++ (weak ones the system lacks are what the GLIBCXX fix covers).
    /// </summary>
    public static string DescribeNativeLibrary(string? baseDirectory = null)
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return "native library: not on Linux, no libstdc++ check";
        string? lib = FindLibTorchSharp(baseDirectory ?? AppContext.BaseDirectory);
        if (lib is null) return "native library: libLibTorchSharp.so not found next to the application";
        try
        {
            var needs = ElfVersionNeeds.ReadNeeds(File.ReadAllBytes(lib)).Where(n => n.Library == "libstdc++.so.6").ToList();
            string? system = FindSystemLibstdcxx();
            if (system is null) return $"native library: {lib}; no system libstdc++.so.6 found to compare its needs with";
            var defined = new HashSet<string>(ElfVersionNeeds.ReadDefinitions(File.ReadAllBytes(system)));
            var weakAbsent = needs.Where(n => n.IsWeak && !defined.Contains(n.Version)).Select(n => n.Version).ToList();
            var missing = needs.Where(n => !n.IsWeak && !defined.Contains(n.Version)).Select(n => n.Version).ToList();
            string weakText = weakAbsent.Count == 0
                ? "every libstdc++ version it needs is defined by " + system
                : $"{string.Join(", ", weakAbsent)} marked weak and absent from {system} (the GLIBCXX fix is what lets it load here)";
            return $"native library: {lib}; {weakText}" + (missing.Count == 0 ? "" : $"; MISSING (the load will fail): {string.Join(", ", missing)}");
        }
        catch (InvalidDataException e)
        {
            return $"native library: {lib}; its ELF version needs could not be read: {e.Message}";
        }
    }

    /// <summary>libLibTorchSharp.so next to the application (RID-specific builds) or under runtimes/linux-*/native (portable builds).</summary>
    internal static string? FindLibTorchSharp(string baseDir)
    {
        string direct = Path.Combine(baseDir, "libLibTorchSharp.so");
        if (File.Exists(direct)) return direct;
        string preferred = Path.Combine(baseDir, "runtimes", RuntimeInformation.RuntimeIdentifier, "native", "libLibTorchSharp.so");
        if (File.Exists(preferred)) return preferred;
        string runtimes = Path.Combine(baseDir, "runtimes");
        if (!Directory.Exists(runtimes)) return null;
        string arch = RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();
        return Directory.GetDirectories(runtimes, "linux*")
            .Select(d => Path.Combine(d, "native", "libLibTorchSharp.so"))
            .Where(File.Exists)
            .OrderByDescending(p => p.Contains($"linux-{arch}", StringComparison.Ordinal))
            .FirstOrDefault();
    }

    /// <summary>What the dynamic loader says about <paramref name="library"/> (dlerror text), or null when it loads.</summary>
    internal static string? LoaderError(string library)
    {
        try
        {
            NativeLibrary.Free(NativeLibrary.Load(library));
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            return e.Message.Trim();
        }
    }

    /// <summary>
    /// The non-weak libstdc++ versions <paramref name="library"/> needs that the system's libstdc++ lacks, or null
    /// when nothing is missing or the system library cannot be found.
    /// </summary>
    internal static string? MissingLibstdcxxVersions(string library, out string? libstdcxx)
    {
        libstdcxx = FindSystemLibstdcxx();
        if (libstdcxx is null) return null;
        try
        {
            var defined = new HashSet<string>(ElfVersionNeeds.ReadDefinitions(File.ReadAllBytes(libstdcxx)));
            var missing = ElfVersionNeeds.ReadNeeds(File.ReadAllBytes(library))
                .Where(n => n.Library == "libstdc++.so.6" && !n.IsWeak && !defined.Contains(n.Version))
                .Select(n => n.Version)
                .ToList();
            return missing.Count == 0 ? null : string.Join(", ", missing);
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    static string? FindSystemLibstdcxx()
    {
        var dirs = (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib"]);
        return dirs.Select(d => Path.Combine(d, "libstdc++.so.6")).FirstOrDefault(File.Exists);
    }
}
