using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>Describes the machine a run measured on.</summary>
public static class MachineProbe
{
    public static MachineInfo Describe(BenchOptions options, Device device, string commandLine)
    {
        bool cuda = device.type == DeviceType.CUDA;
        return new MachineInfo
        {
            CpuModel = CpuModel(),
            CpuBFloat16 = CpuBFloat16Support.Detect().Summary,
            LogicalCores = Environment.ProcessorCount,
            TorchThreads = get_num_threads(),
            Os = RuntimeInformation.OSDescription,
            DotnetVersion = RuntimeInformation.FrameworkDescription,
            TorchSharpVersion = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown",
            Backend = TorchRuntime.BuildBackend,
            Device = device.ToString(),
            DType = options.DType.ToString().ToLowerInvariant(),
            CudaMeasured = cuda,
            GpuName = cuda ? GpuName() : null,
            MemoryTotalBytes = MemoryProbe.TotalBytes() ?? 0,
            StartedUtc = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            CommandLine = commandLine,
            Profile = options.Profile,
            OtherLoad = OtherBusyProcesses(),
            LoadAverage1Min = LoadAverage(),
        };
    }

    /// <summary>"model name" from /proc/cpuinfo (Linux); the architecture elsewhere.</summary>
    public static string CpuModel()
    {
        if (File.Exists("/proc/cpuinfo"))
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.Contains(':'))
                    return line[(line.IndexOf(':') + 1)..].Trim();
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    /// <summary>The GPU's name from nvidia-smi (TorchSharp has no device-name API), or a sentence saying why it is unknown.</summary>
    static string GpuName()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("nvidia-smi", "--query-gpu=name --format=csv,noheader")
            { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (p is null) return "unknown (nvidia-smi did not start)";
            string name = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit(5000);
            return name.Length > 0 ? name.Split('\n')[0].Trim() : "unknown (nvidia-smi printed nothing)";
        }
        catch (System.ComponentModel.Win32Exception) { return "unknown (nvidia-smi not found)"; }
    }

    /// <summary>This process and its ancestors (e.g. the `dotnet run` that launched it): not "other" load.</summary>
    static HashSet<int> OwnProcessChain()
    {
        var chain = new HashSet<int>();
        for (int pid = Environment.ProcessId; pid > 1 && chain.Add(pid);)
        {
            try
            {
                string stat = File.ReadAllText($"/proc/{pid}/stat");
                pid = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { break; }
        }
        return chain;
    }

    public static double LoadAverage()
    {
        if (!File.Exists("/proc/loadavg")) return double.NaN;
        var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
        return double.Parse(first, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Other processes that used more than a tenth of a core over a one-second window: their presence distorts the
    /// numbers, so the report names them (the benchmark never stops anything).
    /// </summary>
    public static IReadOnlyList<string> OtherBusyProcesses()
    {
        if (!Directory.Exists("/proc")) return [];
        var ours = OwnProcessChain();
        Dictionary<int, (long Ticks, string Name)> Sample()
        {
            var result = new Dictionary<int, (long, string)>();
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out int pid) || ours.Contains(pid)) continue;
                try
                {
                    string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                    int open = stat.IndexOf('('), close = stat.LastIndexOf(')');
                    var fields = stat[(close + 2)..].Split(' ');
                    long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                    string cmd = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();
                    result[pid] = (ticks, cmd.Length > 0 ? cmd : stat[(open + 1)..close]);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { }
            }
            return result;
        }
        var before = Sample();
        Thread.Sleep(1000);
        var after = Sample();
        const double ticksPerSecond = 100; // USER_HZ on Linux
        return after.Where(kv => before.TryGetValue(kv.Key, out var b) && (kv.Value.Ticks - b.Ticks) / ticksPerSecond > 0.1)
            .Select(kv =>
            {
                double cores = (kv.Value.Ticks - before[kv.Key].Ticks) / ticksPerSecond;
                string name = kv.Value.Name.Length > 120 ? kv.Value.Name[..120] + "…" : kv.Value.Name;
                return $"pid {kv.Key} using {cores:F1} cores: {name}";
            }).ToList();
    }
}
