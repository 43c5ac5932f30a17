using DiffII.Storage;

namespace DiffII.Imaging;

/// <summary>One image found in a class folder: its id (the path relative to the root, with '/'), its class and its full path.</summary>
public sealed record FolderImage(string Id, string Label, string Path);

/// <summary>An entry the walker did not take, and why (reported to the user, never dropped silently).</summary>
public sealed record SkippedEntry(string Path, string Reason);

/// <summary>What <see cref="ImageFolderWalker.Walk"/> found: the images in class order, and everything it left out.</summary>
public sealed record ImageFolderContents(string Root, IReadOnlyList<FolderImage> Images, IReadOnlyList<SkippedEntry> Skipped)
{
    /// <summary>The reason given for hidden and system entries (.git, .DS_Store, Thumbs.db …).</summary>
    public const string HiddenReason = "hidden or system entry";

    public IReadOnlyList<string> Classes { get; } = Images.Select(i => i.Label).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>One line naming what was skipped (the first few entries and a count), or null when nothing was.</summary>
    public string? SkippedSummary(int shown = 4)
    {
        if (Skipped.Count == 0) return null;
        // Entries worth a look (other file types, links, FIFOs) before the expected noise of hidden and system ones.
        var first = Skipped.OrderBy(s => s.Reason == HiddenReason).Take(shown).Select(s => $"{System.IO.Path.GetRelativePath(Root, s.Path)} ({s.Reason})");
        return $"skipped {Skipped.Count} {(Skipped.Count == 1 ? "entry" : "entries")} of {Root}: {string.Join("; ", first)}{(Skipped.Count > shown ? "; …" : "")}";
    }
}

/// <summary>
/// The one walk of a "one sub-folder per class" image folder, shared by the library's ImageFolderDataset and the
/// diffii CLI. Each direct sub-folder is a class; image files anywhere below it belong to it. The walk never leaves
/// the root through a directory symlink and never enters a folder twice (a <c>loop -> ..</c> link would otherwise
/// make one class read the others' images), opens only regular files (a FIFO named x.png would block forever), and
/// leaves out system and hidden entries (.git, .Trash, macOS's ._x.png). Everything left out is reported.
/// </summary>
public static class ImageFolderWalker
{
    /// <summary>The image types read (what Skia decodes).</summary>
    public static readonly IReadOnlySet<string> Extensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".ico" };

    /// <summary>Folder and file names that tools and operating systems leave beside datasets (hidden names are skipped too).</summary>
    static readonly HashSet<string> SystemNames = new(StringComparer.OrdinalIgnoreCase)
        { "__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information", "Thumbs.db", "desktop.ini", "lost+found" };

    public static string ExtensionList => string.Join(", ", Extensions.Select(e => e.TrimStart('.')));

    /// <param name="folder">The root: one sub-folder per class.</param>
    /// <param name="exclude">A folder inside the root to leave out (e.g. a work folder), or null.</param>
    /// <exception cref="DirectoryNotFoundException">The root does not exist.</exception>
    /// <exception cref="InvalidDataException">No class folders, or a class folder without images (named).</exception>
    public static ImageFolderContents Walk(string folder, string? exclude = null)
    {
        string root = System.IO.Path.GetFullPath(folder).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        if (root.Length == 0) root = "/";
        if (File.Exists(root)) throw new InvalidDataException($"The image folder {root} is a file, not a folder; it needs one sub-folder of images per class.");
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"The image folder {root} does not exist; it needs one sub-folder of images per class.");
        string realRoot = RealPath(root);
        string? excluded = exclude is null ? null : RealPath(System.IO.Path.GetFullPath(exclude));
        var skipped = new List<SkippedEntry>();
        var images = new List<FolderImage>();
        var visited = new HashSet<string>(StringComparer.Ordinal) { realRoot };

        var classFolders = new List<string>();
        foreach (var entry in Entries(root))
        {
            if (Directory.Exists(entry))
            {
                if (SkipName(entry, skipped)) continue;
                if (!Enterable(entry, realRoot, excluded, visited, skipped)) continue;
                classFolders.Add(entry);
            }
            else if (Extensions.Contains(System.IO.Path.GetExtension(entry)) && !Hidden(entry))
                skipped.Add(new SkippedEntry(entry, "an image outside any class folder"));
            else if (!Hidden(entry) && !SystemNames.Contains(System.IO.Path.GetFileName(entry)))
                skipped.Add(new SkippedEntry(entry, "not in a class folder"));
        }
        if (classFolders.Count == 0)
        {
            bool loose = skipped.Any(s => s.Reason.StartsWith("an image", StringComparison.Ordinal));
            throw new InvalidDataException(loose
                ? $"The image folder {root} has images but no class sub-folders; put each class's images in its own sub-folder (e.g. {System.IO.Path.Combine(root, "cat")})."
                : $"The image folder {root} has no images; it needs one sub-folder of images per class.");
        }
        foreach (var classFolder in classFolders)
        {
            string label = System.IO.Path.GetFileName(classFolder);
            int before = images.Count;
            var found = new List<string>();
            Collect(classFolder, realRoot, excluded, visited, skipped, found);
            foreach (var file in found.Order(StringComparer.Ordinal))
                images.Add(new FolderImage(System.IO.Path.GetRelativePath(root, file).Replace('\\', '/'), label, file));
            if (images.Count == before)
                throw new InvalidDataException($"The class '{label}' ({classFolder}) has no images; add some ({ExtensionList}) or remove the folder.");
        }
        return new ImageFolderContents(root, images, skipped);
    }

    static void Collect(string folder, string realRoot, string? excluded, HashSet<string> visited, List<SkippedEntry> skipped, List<string> found)
    {
        foreach (var entry in Entries(folder))
        {
            if (SkipName(entry, skipped)) continue;
            if (Directory.Exists(entry))
            {
                if (Enterable(entry, realRoot, excluded, visited, skipped)) Collect(entry, realRoot, excluded, visited, skipped, found);
                continue;
            }
            if (!Extensions.Contains(System.IO.Path.GetExtension(entry)))
            {
                skipped.Add(new SkippedEntry(entry, $"not a supported image type ({ExtensionList})"));
                continue;
            }
            var kind = FileKind.Of(entry);
            if (kind == FileKindValue.Missing) skipped.Add(new SkippedEntry(entry, "a broken symbolic link"));
            else if (kind != FileKindValue.Regular) skipped.Add(new SkippedEntry(entry, FileKind.Describe(kind) + ", not a regular file"));
            else found.Add(entry);
        }
    }

    /// <summary>Whether a folder may be entered: inside the root (after links), not the excluded folder, not seen before.</summary>
    static bool Enterable(string folder, string realRoot, string? excluded, HashSet<string> visited, List<SkippedEntry> skipped)
    {
        string real = RealPath(folder);
        if (!IsWithin(real, realRoot))
        {
            skipped.Add(new SkippedEntry(folder, $"a link to {real}, outside the image folder"));
            return false;
        }
        if (excluded is not null && IsWithin(real, excluded))
        {
            skipped.Add(new SkippedEntry(folder, "the work folder"));
            return false;
        }
        if (!visited.Add(real))
        {
            skipped.Add(new SkippedEntry(folder, $"a link to {real}, a folder already walked (a loop or a second path)"));
            return false;
        }
        return true;
    }

    static bool SkipName(string entry, List<SkippedEntry> skipped)
    {
        string name = System.IO.Path.GetFileName(entry);
        if (name.StartsWith("._", StringComparison.Ordinal)) { skipped.Add(new SkippedEntry(entry, "a macOS resource fork")); return true; }
        if (Hidden(entry) || SystemNames.Contains(name))
        {
            // Hidden and system entries are expected noise; they are counted, but only images and folders are worth naming.
            skipped.Add(new SkippedEntry(entry, ImageFolderContents.HiddenReason));
            return true;
        }
        return false;
    }

    static bool Hidden(string entry) => System.IO.Path.GetFileName(entry).StartsWith('.');

    static IEnumerable<string> Entries(string folder)
    {
        try { return Directory.GetFileSystemEntries(folder).Order(StringComparer.Ordinal).ToList(); }
        catch (UnauthorizedAccessException e) { throw new UnauthorizedAccessException($"The folder {folder} cannot be read ({e.Message}).", e); }
    }

    /// <summary>The path with every symbolic link resolved (the folder itself and its parents).</summary>
    public static string RealPath(string path)
    {
        string full = System.IO.Path.GetFullPath(path).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        if (full.Length == 0) return "/";
        string? parent = System.IO.Path.GetDirectoryName(full);
        string resolvedParent = parent is null ? full : RealPath(parent);
        string here = parent is null ? full : System.IO.Path.Combine(resolvedParent, System.IO.Path.GetFileName(full));
        for (int hops = 0; hops < 40; hops++)
        {
            FileSystemInfo info = Directory.Exists(here) ? new DirectoryInfo(here) : new FileInfo(here);
            if (info.LinkTarget is not string target) return here;
            here = System.IO.Path.GetFullPath(target, System.IO.Path.GetDirectoryName(here) ?? "/");
            if (System.IO.Path.GetDirectoryName(here) is string p) here = System.IO.Path.Combine(RealPath(p), System.IO.Path.GetFileName(here));
        }
        return here;
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or inside it (both full, real paths).</summary>
    public static bool IsWithin(string path, string folder)
    {
        string f = folder.TrimEnd(System.IO.Path.DirectorySeparatorChar);
        return path == f || path.StartsWith(f + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal) || f.Length == 0;
    }
}
