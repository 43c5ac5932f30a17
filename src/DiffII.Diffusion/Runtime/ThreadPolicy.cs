using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;

namespace DiffII.Diffusion.Runtime;

/// <summary>
/// How many threads libtorch's CPU kernels use. libtorch's default is every core of the machine, and its OpenMP
/// threads spin while they wait: two runs side by side on two cores (CI, a Slurm or Kubernetes node) then fight for
/// the cores and each runs tens of times slower. The policy: a count asked for (option, <see cref="EnvironmentVariable"/>
/// or OMP_NUM_THREADS), else the cores this process may really use (its CPU affinity and its cgroup's CPU quota),
/// and OpenMP threads that sleep rather than spin while they wait.
/// </summary>
public static class ThreadPolicy
{
    public const string EnvironmentVariable = "DIFFII_THREADS";
    public const int MaxThreads = 1024;

    /// <summary>A thread count and where it came from (for --verbose and the bench).</summary>
    public sealed record Choice(int Threads, string Reason);

    /// <summary>The cores this process may use: the affinity mask and the cgroup CPU quota (cgroup v2 cpu.max or v1 cfs quota), whichever is lower.</summary>
    public static (int Cores, string Reason) AvailableCores()
    {
        // .NET's ProcessorCount already honours the affinity mask (sched_getaffinity) and, on Linux, the cgroup quota.
        int cores = Math.Max(1, Environment.ProcessorCount);
        string reason = $"{cores} usable cores (affinity)";
        if (CgroupQuota() is double quota && quota < cores)
        {
            cores = Math.Max(1, (int)Math.Ceiling(quota));
            reason = $"cgroup CPU quota of {quota.ToString("0.##", CultureInfo.InvariantCulture)} cores";
        }
        return (cores, reason);
    }

    /// <summary>The thread count for <paramref name="requested"/> (an option's value, or null).</summary>
    public static Choice Choose(int? requested)
    {
        if (requested is int n) return new Choice(Check(n, "--threads"), "--threads");
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } text) return new Choice(Parse(text, EnvironmentVariable), EnvironmentVariable);
        if (Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is { Length: > 0 } omp && int.TryParse(omp.Split(',')[0], NumberStyles.None, CultureInfo.InvariantCulture, out int o) && o >= 1)
            return new Choice(Math.Min(o, MaxThreads), "OMP_NUM_THREADS");
        var (cores, reason) = AvailableCores();
        return new Choice(cores, reason);
    }

    /// <summary>
    /// Applies <see cref="Choose"/>(<paramref name="requested"/>) before any work: OpenMP's passive wait (effective when
    /// called before libtorch is first loaded) and libtorch's intra-op thread count.
    /// </summary>
    public static Choice Apply(int? requested)
    {
        var choice = Choose(requested);
        PreferPassiveWait();
        try
        {
            TorchRuntime.EnsureLoaded();
            torch.set_num_threads(choice.Threads);
        }
        catch (TorchRuntimeException)
        {
            // No native backend: nothing to configure; the work that needs it reports the cause.
        }
        return choice;
    }

    /// <summary>
    /// OpenMP threads that sleep rather than spin while they wait, unless OMP_WAIT_POLICY says otherwise. Effective
    /// only before libtorch (and with it libgomp) is first loaded: <see cref="TorchRuntime.EnsureLoaded"/> calls it then.
    /// </summary>
    internal static void PreferPassiveWait()
    {
        if (OperatingSystem.IsWindows() || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        // libgomp reads its environment once, when libtorch loads it; .NET's SetEnvironmentVariable does not reach it.
        try { SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0); } catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        Environment.SetEnvironmentVariable("OMP_WAIT_POLICY", "PASSIVE");
    }

    /// <summary>
    /// The thread count a library process gets when libtorch is first loaded, for code that never calls
    /// <see cref="Apply"/> (an ML.NET pipeline, a web server): <see cref="EnvironmentVariable"/> when set; else
    /// libtorch's own count (OMP_NUM_THREADS, or every core), lowered to the cores this process may use when it is
    /// more (a container's CPU quota). Null: leave libtorch's count as it is.
    /// </summary>
    internal static int? LibraryDefault(int current)
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } text) return Parse(text, EnvironmentVariable);
        if (Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is { Length: > 0 }) return null;
        int cores = AvailableCores().Cores;
        return current > cores ? cores : null;
    }

    static int Parse(string text, string name) =>
        int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? Check(n, name)
            : throw new ArgumentException($"{name} must be a whole number of threads (1 to {MaxThreads}); got '{text}'.");

    static int Check(int n, string name) => n is >= 1 and <= MaxThreads ? n
        : throw new ArgumentOutOfRangeException(name, $"{name} must be between 1 and {MaxThreads} threads; got {n}.");

    static double? CgroupQuota()
    {
        try
        {
            if (File.Exists("/sys/fs/cgroup/cpu.max"))
            {
                var parts = File.ReadAllText("/sys/fs/cgroup/cpu.max").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if (parts.Length == 2 && parts[0] != "max" && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double q)
                    && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double p) && q > 0 && p > 0)
                    return q / p;
                return null;
            }
            string v1 = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", period = "/sys/fs/cgroup/cpu/cpu.cfs_period_us";
            if (File.Exists(v1) && File.Exists(period)
                && double.TryParse(File.ReadAllText(v1).Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double q1) && q1 > 0
                && double.TryParse(File.ReadAllText(period).Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p1) && p1 > 0)
                return q1 / p1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);
}
