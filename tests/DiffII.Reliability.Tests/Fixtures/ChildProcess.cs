using System.Diagnostics;
using System.Text.RegularExpressions;

namespace DiffII.Reliability.Tests.Fixtures;

/// <summary>
/// Runs the diffii tool in a process of its own under strace, so a test can see its rename() calls and kill it
/// (SIGKILL: no clean-up of any kind runs) at exactly one of them.
/// </summary>
/// <remarks>
/// strace cannot match the target of rename() by path (its -P filter looks at the first path only, here a random
/// temporary name), so the kill is placed by count: a first run lists the renames, a second is killed at the Nth.
/// The tool renames on its main thread only, in an order fixed by the run's inputs.
/// </remarks>
public static partial class ChildProcess
{
    static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    static string CliDll => Path.Combine(AppContext.BaseDirectory, "DiffII.Cli.dll");

    static string Strace()
    {
        string? strace = new[] { "/usr/bin/strace", "/bin/strace" }.FirstOrDefault(File.Exists);
        Assert.True(strace is not null, "This row kills a real process at a chosen system call with strace; install it (apt-get install strace; .ci/run does).");
        return strace!;
    }

    static readonly string[] Renames = ["-e", "trace=rename,renameat,renameat2", "-e", "signal=none"];

    /// <summary>Runs <c>diffii <paramref name="args"/></c> to the end and returns the target path of every rename, in order.</summary>
    public static IReadOnlyList<string> RenameTargets(string[] args, TimeSpan timeout)
    {
        string log = Path.GetTempFileName();
        try
        {
            int code = Run([.. Renames, "-o", log], args, timeout);
            Assert.True(code == 0, $"diffii {string.Join(' ', args)} failed under strace (exit {code}).");
            return File.ReadAllLines(log).Select(l => LastQuoted().Matches(l)).Where(m => m.Count >= 2).Select(m => m[^1].Groups[1].Value).ToList();
        }
        finally { File.Delete(log); }
    }

    /// <summary>Runs <c>diffii <paramref name="args"/></c> and kills it as it calls its <paramref name="n"/>th rename (1-based), before the rename happens.</summary>
    public static void RunKilledAtRename(int n, string[] args, TimeSpan timeout)
    {
        int code = Run([.. Renames, "-o", "/dev/null", "-e", $"inject=rename,renameat,renameat2:signal=KILL:when={n}"], args, timeout);
        Assert.True(code == 128 + 9, $"expected the tool to be killed at rename {n} (exit 137), got exit {code}.");
    }

    static int Run(string[] straceArgs, string[] args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(Strace()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "-f", "-qq" }.Concat(straceArgs).Concat(["--", Dotnet, CliDll]).Concat(args))
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"diffii under strace did not finish within {timeout}.");
        }
        process.WaitForExit();
        if (process.ExitCode is not (0 or 137)) Assert.Fail($"diffii under strace: exit {process.ExitCode}\n{stdout.Result}\n{stderr.Result}");
        return process.ExitCode;
    }

    [GeneratedRegex("\"((?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex LastQuoted();
}
