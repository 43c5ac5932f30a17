using System.Security.Cryptography;
using System.Text;
using DiffII.Imaging;
using DiffII.Storage;

namespace DiffII.Cli;

/// <summary>
/// The user's labelled images, from a folder with one sub-folder per class or from a CSV of path,label rows. Ids
/// are paths relative to the folder (or as written in the CSV), so a moved dataset keeps its work folder.
/// </summary>
public sealed class ImageSet
{
    ImageSet(string source, IReadOnlyList<(string Id, string Label, string Path)> items)
    {
        Source = source;
        Items = items;
        Images = items.Select(i => new LabeledImage(i.Id, i.Label, () => File.ReadAllBytes(i.Path))).ToList();
        Classes = items.Select(i => i.Label).Distinct().Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The folder or CSV file the images came from.</summary>
    public string Source { get; }
    public IReadOnlyList<(string Id, string Label, string Path)> Items { get; }
    public IReadOnlyList<LabeledImage> Images { get; }
    /// <summary>Class names in ordinal order, the order the method numbers them.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>The full path of an image id (for error messages that must name the file).</summary>
    public string PathOf(string id) => Items.FirstOrDefault(i => i.Id == id).Path ?? id;

    /// <summary>A subset (e.g. a train split) keeping the same source.</summary>
    public ImageSet Subset(IEnumerable<string> ids)
    {
        var keep = ids.ToHashSet(StringComparer.Ordinal);
        return new ImageSet(Source, Items.Where(i => keep.Contains(i.Id)).ToList());
    }

    /// <summary>What the folder walk left out (hidden entries, other file types, links out of the folder, FIFOs, …).</summary>
    public IReadOnlyList<SkippedEntry> Skipped { get; private init; } = [];

    /// <summary>One line naming what the walk skipped, or null.</summary>
    public string? SkippedSummary(int shown = 4) => new ImageFolderContents(Source, [], Skipped).SkippedSummary(shown);

    /// <summary>A folder whose sub-folders are the classes, walked by <see cref="ImageFolderWalker"/> (the library's walk).</summary>
    /// <param name="exclude">A folder inside <paramref name="folder"/> to leave out, or null.</param>
    public static ImageSet FromFolder(string folder, string? exclude = null)
    {
        ImageFolderContents contents;
        try { contents = ImageFolderWalker.Walk(folder, exclude); }
        catch (DirectoryNotFoundException)
        { throw new CliException($"The image folder {Path.GetFullPath(folder)} does not exist; pass --images with a folder that has one sub-folder per class."); }
        catch (InvalidDataException e) { throw new CliException(e.Message); }
        return new ImageSet(contents.Root, contents.Images.Select(i => (i.Id, i.Label, i.Path)).ToList()) { Skipped = contents.Skipped };
    }

    /// <summary>
    /// A CSV of path,label rows (a header row naming "path" and "label" is optional; fields may be quoted). Relative
    /// paths resolve against the CSV's folder.
    /// </summary>
    public static ImageSet FromCsv(string csvPath)
    {
        string csv = Path.GetFullPath(csvPath);
        if (!File.Exists(csv)) throw new CliException($"The CSV file {csv} does not exist; pass --csv with a file of path,label rows.");
        string folder = Path.GetDirectoryName(csv)!;
        if (FileKind.Of(csv) is var csvKind && csvKind != FileKindValue.Regular)
            throw new CliException($"The CSV file {csv} is {FileKind.Describe(csvKind)}; pass --csv with a file of path,label rows.");
        var lines = File.ReadAllLines(csv);
        var items = new List<(string, string, string)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        // The same file under two spellings (img/s1.png, ./img/s1.png, a link to it) is the same image: compare real paths.
        var seenFiles = new Dictionary<string, int>(StringComparer.Ordinal);
        bool firstRow = true;
        for (int n = 0; n < lines.Length; n++)
        {
            if (string.IsNullOrWhiteSpace(lines[n])) continue;
            var fields = SplitCsvLine(lines[n]);
            bool header = firstRow && fields.Count >= 2 && fields[0].Trim().Equals("path", StringComparison.OrdinalIgnoreCase);
            firstRow = false;
            if (header) continue;
            if (fields.Count < 2 || fields[0].Trim().Length == 0 || fields[1].Trim().Length == 0)
                throw new CliException($"{csv}, line {n + 1}: expected path,label; got '{lines[n].Trim()}'.");
            string written = fields[0].Trim();
            string label = fields[1].Trim();
            string path = Path.GetFullPath(Path.Combine(folder, written));
            var kind = FileKind.Of(path);
            if (kind == FileKindValue.Missing) throw new CliException($"{csv}, line {n + 1}: the image {path} does not exist.");
            if (kind != FileKindValue.Regular) throw new CliException($"{csv}, line {n + 1}: the image {path} is {FileKind.Describe(kind)}, not a regular file.");
            string id = written.Replace('\\', '/');
            if (!seen.Add(id)) throw new CliException($"{csv}, line {n + 1}: the image {written} is listed twice.");
            string real = ImageFolderWalker.RealPath(path);
            if (seenFiles.TryGetValue(real, out int firstLine))
                throw new CliException($"{csv}, line {n + 1}: the image {written} is the file of line {firstLine} ({real}) again; each image may be listed once.");
            seenFiles[real] = n + 1;
            items.Add((id, label, path));
        }
        if (items.Count == 0) throw new CliException($"The CSV file {csv} lists no images; it needs path,label rows.");
        return new ImageSet(csv, items);
    }

    /// <summary>Decodes every image once, so a broken file is named before hours of training rather than after.</summary>
    public void Validate()
    {
        foreach (var (_, _, path) in Items)
        {
            using var bitmap = ImageCodec.DecodeFile(path, minSide: 8);
        }
    }

    /// <summary>A hash of ids, labels and contents: what makes a work folder belong to these images.</summary>
    public string Fingerprint()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (id, label, path) in Items.OrderBy(i => i.Id, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(id + "\n" + label + "\n"));
            hash.AppendData(SHA256.HashData(File.ReadAllBytes(path)));
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    static List<string> SplitCsvLine(string line)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else field.Append(ch);
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(ch);
        }
        fields.Add(field.ToString());
        return fields;
    }
}
