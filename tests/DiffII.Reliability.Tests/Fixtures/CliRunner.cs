using DiffII.Cli;

namespace DiffII.Reliability.Tests.Fixtures;

/// <summary>What one in-process run of the diffii command line printed and returned.</summary>
public sealed record CliResult(int Code, string Stdout, string Stderr)
{
    public string[] ErrorLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Asserts the run failed with exit code 1 and exactly one error line (no stack trace); returns that line.</summary>
    public string OneErrorLine()
    {
        Assert.True(Code == 1, ToString());
        Assert.DoesNotContain("   at ", Stderr);
        Assert.DoesNotContain("unexpected error", Stderr);
        return Assert.Single(ErrorLines, l => l.StartsWith("diffii", StringComparison.Ordinal));
    }

    public void AssertOk() => Assert.True(Code == 0, ToString());

    public override string ToString() => $"exit {Code}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs diffii in-process, as the tool's own tests do.</summary>
public static class CliRunner
{
    public static Task<CliResult> Run(params string[] args) => Run(CancellationToken.None, null, args);

    public static async Task<CliResult> Run(CancellationToken cancel, TextWriter? stderr, params string[] args)
    {
        var stdout = new StringWriter();
        var err = stderr ?? new StringWriter();
        int code = await CliApp.RunAsync(args, stdout, err, cancel);
        return new CliResult(code, stdout.ToString(), err.ToString() ?? "");
    }
}

/// <summary>A stderr writer that calls back on every line (to cancel, or to act, at a chosen moment of a run).</summary>
public sealed class WatchingWriter(Action<string> onLine) : StringWriter
{
    public override void WriteLine(string? value)
    {
        base.WriteLine(value);
        if (value is not null) onLine(value);
    }
}
