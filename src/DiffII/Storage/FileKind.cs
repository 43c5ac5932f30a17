using System.Runtime.InteropServices;

namespace DiffII.Storage;

/// <summary>What a path is on disk, following symbolic links: only regular files are ever opened for reading.</summary>
public enum FileKindValue { Missing, Regular, Directory, Fifo, CharacterDevice, BlockDevice, Socket, Other }

/// <summary>
/// The type of a file without opening it. Opening a FIFO named <c>x.png</c> blocks until some other process writes to
/// it, and a device can be endless; .NET's file APIs report both as ordinary files, so the type comes from stat().
/// </summary>
public static class FileKind
{
    // The .NET runtime's own stat() shim (libSystem.Native, which every .NET process on Unix has loaded): its
    // FileStatus record starts with int32 Flags, then int32 Mode holding st_mode with the S_IFMT type bits.
    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat", SetLastError = true)]
    static extern int Stat(byte[] path, byte[] status);

    const int TypeMask = 0xF000;

    /// <summary>The kind of <paramref name="path"/>, following symbolic links.</summary>
    public static FileKindValue Of(string path)
    {
        if (Directory.Exists(path)) return FileKindValue.Directory;
        if (!File.Exists(path)) return FileKindValue.Missing;
        if (OperatingSystem.IsWindows()) return FileKindValue.Regular;
        try
        {
            byte[] utf8 = System.Text.Encoding.UTF8.GetBytes(path + "\0");
            var status = new byte[512];
            if (Stat(utf8, status) != 0) return FileKindValue.Missing;
            int mode = BitConverter.ToInt32(status, 4);
            return (mode & TypeMask) switch
            {
                0x8000 => FileKindValue.Regular,
                0x4000 => FileKindValue.Directory,
                0x1000 => FileKindValue.Fifo,
                0x2000 => FileKindValue.CharacterDevice,
                0x6000 => FileKindValue.BlockDevice,
                0xC000 => FileKindValue.Socket,
                _ => FileKindValue.Other,
            };
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Without the shim: FIFOs, sockets and devices all have size 0, and an empty file is refused anyway.
            return new FileInfo(path).Length > 0 ? FileKindValue.Regular : FileKindValue.Other;
        }
    }

    /// <summary>"a FIFO (named pipe)", "a folder", …: how a message names a kind.</summary>
    public static string Describe(FileKindValue kind) => kind switch
    {
        FileKindValue.Regular => "a regular file",
        FileKindValue.Directory => "a folder",
        FileKindValue.Fifo => "a FIFO (named pipe)",
        FileKindValue.CharacterDevice => "a character device",
        FileKindValue.BlockDevice => "a block device",
        FileKindValue.Socket => "a socket",
        FileKindValue.Missing => "missing",
        _ => "not a regular file",
    };

    /// <summary>Throws naming the file unless <paramref name="path"/> is a regular file (what every reader here opens).</summary>
    public static void RequireRegular(string path, string what)
    {
        var kind = Of(path);
        if (kind == FileKindValue.Missing) throw new FileNotFoundException($"{what} {path} does not exist.", path);
        if (kind != FileKindValue.Regular) throw new InvalidDataException($"{what} {path} is {Describe(kind)}, not a regular file; it is not read.");
    }
}
