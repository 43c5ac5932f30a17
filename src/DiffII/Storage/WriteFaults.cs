namespace DiffII.Storage;

/// <summary>
/// A seam for the reliability tests: it makes the writes of one logical call flow fail the way a full disk or a
/// read-only folder makes them fail, at the moment a real fault would strike (the temporary file is open, nothing is
/// renamed yet). Tests run as root in CI, where permission bits do not stop writes and no small file system can be
/// mounted, so this is the portable way to exercise those paths. It is an <see cref="AsyncLocal{T}"/>: tests running
/// in parallel, and every other caller, never see another flow's fault. Nothing in the product sets it.
/// </summary>
internal static class WriteFaults
{
    static readonly AsyncLocal<Func<string, Exception?>?> Current = new();

    /// <summary>Makes every write in this flow ask <paramref name="fault"/> (given the final path) for an exception to throw; dispose to stop.</summary>
    internal static IDisposable Inject(Func<string, Exception?> fault)
    {
        var previous = Current.Value;
        Current.Value = fault;
        return new Restore(previous);
    }

    /// <summary>Throws the injected fault for a write to <paramref name="path"/>, if any.</summary>
    internal static void Check(string path)
    {
        if (Current.Value?.Invoke(path) is { } fault) throw fault;
    }

    sealed class Restore(Func<string, Exception?>? previous) : IDisposable
    {
        public void Dispose() => Current.Value = previous;
    }
}
