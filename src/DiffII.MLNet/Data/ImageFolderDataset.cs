using DiffII.Imaging;
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
    /// <summary>
    /// Every image (<see cref="ImageFolderWalker.Extensions"/>) anywhere below each direct sub-folder of
    /// <paramref name="folder"/>, labelled with the sub-folder's name, in ordinal order of class then path. The walk is
    /// the diffii CLI's (<see cref="ImageFolderWalker"/>): links out of the folder or into a loop are not followed,
    /// only regular files are read, hidden and system entries are left out; <see cref="Walk"/> says what was skipped.
    /// A sub-folder without images is an error naming it.
    /// </summary>
    public static IReadOnlyList<ImageFolderRow> Scan(string folder) =>
        Walk(folder).Images.Select(i => new ImageFolderRow { Label = i.Label, ImagePath = i.Path }).ToList();

    /// <summary>The walk behind <see cref="Scan"/>, with the entries it skipped and why.</summary>
    public static ImageFolderContents Walk(string folder) => ImageFolderWalker.Walk(folder);

    /// <summary><see cref="Scan"/> as a data view with columns <c>Label</c> (String) and <c>ImagePath</c> (String).</summary>
    public static IDataView Load(MLContext ml, string folder) => ml.Data.LoadFromEnumerable(Scan(folder));
}
