namespace DiffII.Reliability.Tests.Matrix;

/// <summary>The groups of the matrix, in the order the README lists them.</summary>
public enum Area { Images, Datasets, Models, Faults, Determinism, Fuzz, Options, Folders, Resources }

/// <summary>Where a row feeds its input: the library (DiffIIAugmenter, ImageCodec, the readers), the ML.NET adapter, or the diffii CLI.</summary>
public enum Layer { Library, MLNet, Cli }

/// <summary>
/// One row of the reliability matrix: an input or fault (<see cref="When"/>) fed through one <see cref="Layer"/>, and
/// the documented behaviour (<see cref="Then"/>) that <see cref="Check"/> asserts. The README's "what happens when"
/// table is rendered from these rows, so a documented behaviour always has a test behind it.
/// </summary>
public sealed record MatrixRow(string Id, Area Area, Layer Layer, string When, string Then, Func<Scratch, Task> Check)
{
    public static MatrixRow Sync(string id, Area area, Layer layer, string when, string then, Action<Scratch> check) =>
        new(id, area, layer, when, then, scratch => { check(scratch); return Task.CompletedTask; });

    public override string ToString() => Id;
}

/// <summary>A fresh temporary folder for one row, deleted afterwards (write permission restored first, for rows that take it away).</summary>
public sealed class Scratch : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("diffii-matrix-").FullName;

    public string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    public void Dispose()
    {
        if (!OperatingSystem.IsWindows())
            foreach (var dir in Directory.EnumerateDirectories(Root, "*", SearchOption.AllDirectories).Prepend(Root))
                File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.Delete(Root, recursive: true);
    }
}
