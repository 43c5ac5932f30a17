using System.CommandLine;
using DiffII.Storage;

namespace DiffII.Cli.Commands;

/// <summary>
/// How every command that runs the method on a work folder starts: the checks that need only the options and the
/// folders (before the lock, so a refused run leaves nothing behind), the work folder's lock (before the settings
/// are read, so a second run on the folder cannot overwrite the first's), and the settings given on the command
/// line merged over the saved ones, checked. Disposing releases the lock.
/// </summary>
internal sealed class RunStart : IDisposable
{
    public required string Work { get; init; }
    public required string Device { get; init; }
    public required string DType { get; init; }
    public required WorkFolderLock Lock { get; init; }
    public required RunSettings Saved { get; init; }
    public required RunSettings Merged { get; init; }

    /// <param name="beforeLock">A command's own check of the resolved work folder, run before the lock is taken.</param>
    public static RunStart Open(ParseResult parse, GlobalOptions global, MethodOptions m, Action<string>? beforeLock = null)
    {
        string work = Path.GetFullPath(parse.GetValue(m.Work)!);
        string device = parse.GetValue(global.Device)!;
        string dtype = parse.GetValue(global.DType)!;
        UpFrontChecks.WorkFolder(work);
        UpFrontChecks.TempFolder();
        UpFrontChecks.DType(device, dtype);
        beforeLock?.Invoke(work);
        var workLock = WorkFolderLock.Acquire(work);
        try
        {
            var saved = RunSettings.Load(work);
            var merged = m.Given(parse, global).Over(saved);
            UpFrontChecks.Options(merged, work);
            UpFrontChecks.WorkOutsideImages(work, merged);
            return new RunStart { Work = work, Device = device, DType = dtype, Lock = workLock, Saved = saved, Merged = merged };
        }
        catch
        {
            workLock.Dispose();
            throw;
        }
    }

    public void Dispose() => Lock.Dispose();
}
