using Microsoft.ML;

namespace DiffII.MLNet.FineTuning.Tests;

/// <summary>An image row as ML.NET reads it: a path and a class name.</summary>
public sealed class ImageRow
{
    public string Image { get; set; } = "";
    public string Label { get; set; } = "";
}

/// <summary>Trouser vs bag from the repository's Fashion-MNIST subset, written as PNG files: the test split's 50 + 50 to
/// train on, the train split's 10 + 10 held out.</summary>
public sealed class TwoClassData : IDisposable
{
    public string Folder { get; } = TestImages.TempFolder("two-class");
    public List<ImageRow> Train { get; } = [];
    public List<ImageRow> Test { get; } = [];

    public TwoClassData()
    {
        Write("t10k", Train, int.MaxValue);
        Write("train", Test, int.MaxValue);
    }

    void Write(string split, List<ImageRow> rows, int perClass)
    {
        var (images, labels) = TestImages.Read(split);
        var counts = new Dictionary<int, int>();
        for (int i = 0; i < images.Length; i++)
        {
            int label = labels[i];
            if (label is not (1 or 8)) continue;
            counts[label] = counts.GetValueOrDefault(label) + 1;
            if (counts[label] > perClass) continue;
            string path = TestImages.WritePng(images[i], Path.Combine(Folder, $"{split}-{i}.png"));
            rows.Add(new ImageRow { Image = path, Label = TestImages.ClassNames[label] });
        }
    }

    /// <summary>The rows with a key label whose values are the two class names in a fixed order.</summary>
    public static IDataView Keyed(MLContext ml, IEnumerable<ImageRow> rows)
    {
        var data = ml.Data.LoadFromEnumerable(rows);
        var keys = ml.Data.LoadFromEnumerable(new[] { new LabelOnly("Trouser"), new LabelOnly("Bag") });
        return ml.Transforms.Conversion.MapValueToKey("Label", "Label", keyData: keys).Fit(data).Transform(data);
    }

    sealed record LabelOnly(string Label);

    public void Dispose()
    {
        try { Directory.Delete(Folder, true); } catch (IOException) { }
    }
}
