using Microsoft.ML;

namespace DiffII.MLNet.Data;

/// <summary>One image of an image folder: its class (the sub-folder's name) and its absolute path.</summary>
public sealed class ImageFolderRow
{
    public string Label { get; set; } = "";
    public string ImagePath { get; set; } = "";
}

/// <summary>The common "one sub-folder per class" image dataset layout, as rows with a String <c>Label</c> and an <c>ImagePath</c>.</summary>
public static class ImageFolderDataset
{
    static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    /// <summary>
    /// Every image (png, jpg, jpeg, bmp, gif, webp) in each direct sub-folder of <paramref name="folder"/>, labelled with the
    /// sub-folder's name, in ordinal order of class then file name. Files directly in <paramref name="folder"/>, and files
    /// without an image extension, are ignored; a sub-folder without images is an error naming it.
    /// </summary>
    public static IReadOnlyList<ImageFolderRow> Scan(string folder)
    {
        string root = Path.GetFullPath(folder);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"The image folder {root} does not exist.");
        var rows = new List<ImageFolderRow>();
        foreach (var classFolder in Directory.GetDirectories(root).Order(StringComparer.Ordinal))
        {
            int before = rows.Count;
            foreach (var file in Directory.GetFiles(classFolder).Order(StringComparer.Ordinal))
                if (Extensions.Contains(Path.GetExtension(file)))
                    rows.Add(new ImageFolderRow { Label = Path.GetFileName(classFolder), ImagePath = file });
            // A class without images cannot be learned or augmented; leaving it out silently would drop a class.
            if (rows.Count == before)
                throw new InvalidDataException($"The class '{Path.GetFileName(classFolder)}' ({classFolder}) has no images ({string.Join(", ", Extensions.Order())}); add some or remove the folder.");
        }
        if (rows.Count == 0)
            throw new InvalidDataException($"{root} has no images in sub-folders; expected one sub-folder per class, e.g. {Path.Combine(root, "cat", "001.jpg")}.");
        return rows;
    }

    /// <summary><see cref="Scan"/> as a data view with columns <c>Label</c> (String) and <c>ImagePath</c> (String).</summary>
    public static IDataView Load(MLContext ml, string folder) => ml.Data.LoadFromEnumerable(Scan(folder));
}
