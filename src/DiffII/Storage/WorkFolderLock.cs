namespace DiffII.Storage;

/// <summary>Two runs writing into one work folder at once would interleave images and manifests; this lock refuses the second.</summary>
public sealed class WorkFolderInUseException(string folder, string holder)
    : IOException($"The work folder {folder} is in use by another run ({holder}). Wait for it to finish, or use another folder.");

/// <summary>
/// An exclusive lock on a work folder, held for the lifetime of a run. It is an OS file lock on <c>.lock</c>, so a
/// crashed or killed run releases it by itself; no stale lock needs cleaning.
/// </summary>
public sealed class WorkFolderLock : IDisposable
{
    readonly FileStream _stream;

    WorkFolderLock(FileStream stream, string folder) { _stream = stream; Folder = folder; }

    /// <summary>The locked folder (a full path).</summary>
    public string Folder { get; }

    public static WorkFolderLock Acquire(string folder)
    {
        folder = Path.GetFullPath(folder);
        // The topmost folder this lock creates, so a run that writes nothing removes all it made.
        string? created = null;
        for (string? f = folder; f is not null && !Directory.Exists(f); f = Path.GetDirectoryName(f)) created = f;
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, ".lock");
        FileStream stream;
        try
        {
            // FileShare.None is an advisory exclusive lock on Unix and a share-mode lock on Windows.
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            string holder = "unknown process";
            // The locked file itself cannot be opened again, so the holder is described in a file beside it.
            try { holder = File.ReadAllText(path + ".owner").Trim(); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new WorkFolderInUseException(folder, holder.Length == 0 ? "unknown process" : holder);
        }
        File.WriteAllText(path + ".owner", $"pid {Environment.ProcessId} on {Environment.MachineName}");
        return new WorkFolderLock(stream, folder) { _createdFolder = created };
    }

    string? _createdFolder;

    /// <summary>
    /// Releases the lock. A run that wrote nothing else (refused options, images or model) leaves no trace: its lock
    /// files go, and the folder too when this lock made it.
    /// </summary>
    public void Dispose()
    {
        try
        {
            string path = Path.Combine(Folder, ".lock");
            if (Directory.EnumerateFileSystemEntries(Folder).All(e => e == path || e == path + ".owner"))
            {
                File.Delete(path + ".owner");
                File.Delete(path);
                if (_createdFolder is not null)
                    for (string? f = Folder; f is not null && f.Length >= _createdFolder.Length; f = Path.GetDirectoryName(f))
                    {
                        if (Directory.EnumerateFileSystemEntries(f).Any()) break;
                        Directory.Delete(f);
                    }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        _stream.Dispose();
    }
}
