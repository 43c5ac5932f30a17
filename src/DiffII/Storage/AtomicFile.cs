namespace DiffII.Storage;

/// <summary>
/// Writes that are all or nothing: the bytes go to a temporary file in the same folder, are flushed to disk, and
/// the file is renamed into place. A process killed mid-write leaves a stray temporary file (ignored and cleaned on
/// the next run), never a half-written file under the real name that a resumed run would take as done.
/// </summary>
public static class AtomicFile
{
    /// <summary>Suffix of in-progress files; anything ending with it is garbage from an interrupted run.</summary>
    public const string TempSuffix = ".partial";

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                WriteFaults.Check(full);
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) => WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>Deletes temporary files left in <paramref name="folder"/> by interrupted writes.</summary>
    public static int CleanUp(string folder)
    {
        if (!Directory.Exists(folder)) return 0;
        int removed = 0;
        foreach (var file in Directory.EnumerateFiles(folder, "*" + TempSuffix, SearchOption.AllDirectories))
            if (TryDelete(file)) removed++;
        return removed;
    }

    static bool TryDelete(string path)
    {
        try { File.Delete(path); return true; }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}
