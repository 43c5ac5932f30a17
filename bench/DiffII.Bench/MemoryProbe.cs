using System.Globalization;
using TorchSharp;

namespace DiffII.Bench;

/// <summary>The process's memory as the kernel and TorchSharp see it.</summary>
public static class MemoryProbe
{
    static readonly long PageSize = Environment.SystemPageSize;

    /// <summary>Resident set size now, in bytes (/proc/self/statm; the working set elsewhere).</summary>
    public static long ResidentBytes()
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                var fields = File.ReadAllText("/proc/self/statm").Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(fields[1], CultureInfo.InvariantCulture) * PageSize;
            }
            catch (IOException) { }
        }
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    /// <summary>The kernel's estimate of memory available to new allocations without swapping (MemAvailable), or null off Linux.</summary>
    public static long? AvailableBytes() => ReadMeminfo("MemAvailable");

    public static long? TotalBytes() => ReadMeminfo("MemTotal");

    static long? ReadMeminfo(string key)
    {
        if (!OperatingSystem.IsLinux()) return null;
        foreach (var line in File.ReadLines("/proc/meminfo"))
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return ParseKilobytes(line[(key.Length + 1)..]);
        return null;
    }

    /// <summary>"  123456 kB" → bytes.</summary>
    internal static long ParseKilobytes(string text)
    {
        var number = text.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        return long.Parse(number, CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>Live TorchSharp tensors (handles not yet disposed), process-wide.</summary>
    public static long LiveTensors() => torch.Tensor.TotalCount;
}

/// <summary>
/// Samples the resident set in a background thread while a stage runs, because the kernel's high-water mark
/// (VmHWM) cannot be reset between stages. The peak is the largest sample, so a spike shorter than the interval
/// can be missed; 5 ms is far below any stage measured here.
/// </summary>
public sealed class ResidentSetSampler : IDisposable
{
    readonly Thread _thread;
    readonly TimeSpan _interval;
    volatile bool _stop;
    long _peak;

    public ResidentSetSampler(TimeSpan? interval = null)
    {
        _interval = interval ?? TimeSpan.FromMilliseconds(5);
        Start = MemoryProbe.ResidentBytes();
        _peak = Start;
        _thread = new Thread(Run) { IsBackground = true, Name = "rss-sampler", Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    /// <summary>The resident set when sampling began.</summary>
    public long Start { get; }
    public long Peak => Math.Max(Interlocked.Read(ref _peak), MemoryProbe.ResidentBytes());

    void Run()
    {
        while (!_stop)
        {
            long now = MemoryProbe.ResidentBytes();
            if (now > Interlocked.Read(ref _peak)) Interlocked.Exchange(ref _peak, now);
            Thread.Sleep(_interval);
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}
