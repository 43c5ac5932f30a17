using DiffII.Augmentation;
using DiffII.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using SkiaSharp;

namespace DiffII.MLNet.Tests.Data;

public sealed class AugmentedDataViewTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("diffii-aug-").FullName;
    readonly MLContext _ml = new(seed: 1);

    public void Dispose() => Directory.Delete(_dir, true);

    sealed class Row
    {
        public string Label { get; set; } = "";
        public int Code { get; set; }
        public string ImagePath { get; set; } = "";
        public float Other { get; set; }
    }

    string Png(string name, SKColor colour, int size = 12)
    {
        using var bmp = new SKBitmap(size, size);
        bmp.Erase(colour);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    IDataView Source() => _ml.Data.LoadFromEnumerable(new[]
    {
        new Row { Label = "cat", Code = 3, ImagePath = Path.GetFileName(Png("cat1.png", SKColors.Red)), Other = 7 },
        new Row { Label = "cat", Code = 3, ImagePath = Path.GetFileName(Png("cat2.png", SKColors.Red)), Other = 8 },
        new Row { Label = "dog", Code = 5, ImagePath = Path.GetFileName(Png("dog1.png", SKColors.Blue)), Other = 9 },
    });

    List<SyntheticRowValue> Synthetic() =>
    [
        new("cat", Png("syn-cat.png", SKColors.Orange, 16), 1f),
        new("dog", Png("syn-dog.png", SKColors.Cyan, 16), 0.75f),
    ];

    [Fact]
    public void PathColumn_OriginalRowsThenSynthetic_WithFlagsWeightsAndLabels()
    {
        var view = new AugmentedDataView(Source(), "Label", "ImagePath", Synthetic());
        Assert.Equal(5, view.GetRowCount());
        var labels = view.GetColumn<string>("Label").ToArray();
        var flags = view.GetColumn<bool>("IsSynthetic").ToArray();
        var weights = view.GetColumn<float>("SampleWeight").ToArray();
        var paths = view.GetColumn<string>("ImagePath").ToArray();
        var other = view.GetColumn<float>("Other").ToArray();
        Assert.Equal(["cat", "cat", "dog", "cat", "dog"], labels);
        Assert.Equal([false, false, false, true, true], flags);
        Assert.Equal([1f, 1f, 1f, 1f, 0.75f], weights);
        Assert.Equal(Path.Combine(_dir, "syn-dog.png"), paths[4]);
        Assert.Equal([7f, 8f, 9f, 0f, 0f], other);

        // The synthetic path rows load like any other with LoadImages (absolute paths win over the folder).
        var loaded = _ml.Transforms.LoadImages("Image", _dir, "ImagePath").Fit(view).Transform(view);
        var widths = loaded.GetColumn<MLImage>("Image").Select(i => i.Width).ToArray();
        Assert.Equal([12, 12, 12, 16, 16], widths);
    }

    [Fact]
    public void MLImageColumn_StaysMLImage_AndTwoCursorsReturnTheSameRows()
    {
        var images = _ml.Transforms.LoadImages("Image", _dir, "ImagePath").Fit(Source()).Transform(Source());
        var view = new AugmentedDataView(images, "Label", "Image", Synthetic());
        Assert.IsType<Microsoft.ML.Transforms.Image.ImageDataViewType>(view.Schema["Image"].Type);
        string Fingerprint() => string.Join("|", view.GetColumn<MLImage>("Image").Select(i => $"{i.Width}:{i.Pixels[0]}:{i.Pixels[2]}"));
        string first = Fingerprint();
        Assert.Equal(first, Fingerprint());
        Assert.StartsWith("12:", first);
        Assert.Equal(5, first.Split('|').Length);
        Assert.Equal(["16", "16"], first.Split('|')[3..].Select(f => f.Split(':')[0]).ToArray());
        var orange = view.GetColumn<MLImage>("Image").ElementAt(3);
        var rgb = orange.PixelFormat == MLPixelFormat.Bgra32 ? (orange.Pixels[2], orange.Pixels[1], orange.Pixels[0]) : (orange.Pixels[0], orange.Pixels[1], orange.Pixels[2]);
        Assert.Equal(((byte)255, (byte)165, (byte)0), rgb);
    }

    [Fact]
    public void BytesColumn_StaysEncodedBytes()
    {
        var bytes = _ml.Transforms.LoadRawImageBytes("Bytes", _dir, "ImagePath").Fit(Source()).Transform(Source());
        var view = new AugmentedDataView(bytes, "Label", "Bytes", Synthetic());
        var all = view.GetColumn<byte[]>("Bytes").ToArray();
        Assert.Equal(5, all.Length);
        using var decoded = SKBitmap.Decode(all[3]);
        Assert.Equal(16, decoded.Width);
        Assert.Equal(SKColors.Orange, decoded.GetPixel(3, 3));
    }

    [Fact]
    public void KeyAndIntegerLabels_RoundTripInTheirOwnTypes()
    {
        var keyed = _ml.Transforms.Conversion.MapValueToKey("Key", "Label").Fit(Source()).Transform(Source());
        var view = new AugmentedDataView(keyed, "Key", "ImagePath", Synthetic());
        var keys = view.GetColumn<uint>("Key").ToArray();
        Assert.Equal(keys[0], keys[3]); // synthetic "cat" is the same key as real "cat"
        Assert.Equal(keys[2], keys[4]);
        Assert.NotEqual(keys[0], keys[2]);

        var byCode = new AugmentedDataView(Source(), "Code", "ImagePath", [new SyntheticRowValue("5", Path.Combine(_dir, "syn-dog.png"))]);
        Assert.Equal([3, 3, 5, 5], byCode.GetColumn<int>("Code").ToArray());
    }

    [Fact]
    public void SyntheticGroup_IsZeroForOriginals_AndNumbersImages_TheRowsOfOneImageSharingANumber()
    {
        string a = Png("syn-a.png", SKColors.Orange, 16), b = Png("syn-b.png", SKColors.Cyan, 16), c = Png("syn-c.png", SKColors.Pink, 16);
        // Caller groups are only an equivalence: 70 and 9 become 2 and 3, in order of first appearance; Group 0 is an image of its own.
        var view = new AugmentedDataView(Source(), "Label", "ImagePath",
        [
            new SyntheticRowValue("cat", a),
            new SyntheticRowValue("cat", b, 0.29f, Group: 70),
            new SyntheticRowValue("dog", b, 0.71f, Group: 70),
            new SyntheticRowValue("dog", c, 0.16f, Group: 9),
            new SyntheticRowValue("cat", c, 0.84f, Group: 9),
        ]);
        Assert.Equal(NumberDataViewType.UInt32, view.Schema["SyntheticGroup"].Type);
        Assert.Equal([0u, 0u, 0u, 1u, 2u, 2u, 3u, 3u], view.GetColumn<uint>("SyntheticGroup").ToArray());
        Assert.Equal([1f, 1f, 1f, 1f, 0.29f, 0.71f, 0.16f, 0.84f], view.GetColumn<float>("SampleWeight").ToArray());

        // An ordinary column: it survives a cache and a transform downstream, row for row.
        var cached = _ml.Data.Cache(_ml.Transforms.Concatenate("Both", "Other", "SampleWeight").Fit(view).Transform(view));
        Assert.Equal([0u, 0u, 0u, 1u, 2u, 2u, 3u, 3u], cached.GetColumn<uint>("SyntheticGroup").ToArray());

        var renamed = new AugmentedDataView(Source(), "Label", "ImagePath", [new SyntheticRowValue("cat", a)], syntheticGroupColumn: "Image");
        Assert.Equal([0u, 0u, 0u, 1u], renamed.GetColumn<uint>("Image").ToArray());
    }

    [Fact]
    public void FromImages_GivesOneRowPerLabel_AndOneGroupPerImage()
    {
        SyntheticImage Image(string id, string path, params ManifestLabel[] labels) => new(id, path, labels[0].ClassName, labels, new ManifestEntry
        {
            Id = id, File = Path.GetFileName(path), ClassName = labels[0].ClassName, ClassIndex = 0, Labels = labels,
            Strategy = "diff-mix", Sources = [], Prompt = "a photo", Seed = 1,
        });
        string a = Png("mix-a.png", SKColors.Orange, 16), b = Png("mix-b.png", SKColors.Cyan, 16), c = Png("plain-c.png", SKColors.Pink, 16);
        var rows = SyntheticRowValue.FromImages(
        [
            Image("s0", a, new ManifestLabel("cat", 0.29f), new ManifestLabel("dog", 0.71f)),
            Image("s1", c, new ManifestLabel("dog", 1f)),
            Image("s2", b, new ManifestLabel("dog", 0.16f), new ManifestLabel("cat", 0.84f)),
        ]);
        Assert.Equal(
            [("cat", a, 0.29f, 1u), ("dog", a, 0.71f, 1u), ("dog", c, 1f, 2u), ("dog", b, 0.16f, 3u), ("cat", b, 0.84f, 3u)],
            rows.Select(r => (r.ClassName, r.ImagePath, r.Weight, r.Group)).ToArray());
        var view = new AugmentedDataView(Source(), "Label", "ImagePath", rows);
        Assert.Equal([0u, 0u, 0u, 1u, 1u, 2u, 3u, 3u], view.GetColumn<uint>("SyntheticGroup").ToArray());
    }

    [Fact]
    public void RowsOfOneImage_MustShareOneGroup_AndAGroupIsOneImage()
    {
        string a = Png("one.png", SKColors.Orange, 16), b = Png("two.png", SKColors.Cyan, 16);
        // The soft-label rows of one image without a group would each be drawn as a full image of its label's class.
        var ungrouped = Assert.Throws<ArgumentException>(() => new AugmentedDataView(Source(), "Label", "ImagePath",
            [new SyntheticRowValue("cat", a, 0.29f), new SyntheticRowValue("dog", a, 0.71f)]));
        Assert.Contains("rows 0 and 1 hold the same image", ungrouped.Message);
        Assert.Contains("have no group", ungrouped.Message);
        var split = Assert.Throws<ArgumentException>(() => new AugmentedDataView(Source(), "Label", "ImagePath",
            [new SyntheticRowValue("cat", a, 0.29f, Group: 1), new SyntheticRowValue("dog", a, 0.71f, Group: 2)]));
        Assert.Contains("are in groups 1 and 2", split.Message);
        var halfGrouped = Assert.Throws<ArgumentException>(() => new AugmentedDataView(Source(), "Label", "ImagePath",
            [new SyntheticRowValue("cat", a, 0.29f, Group: 4), new SyntheticRowValue("dog", a, 0.71f)]));
        Assert.Contains("are in groups 4 and 0", halfGrouped.Message);
        var twoImages = Assert.Throws<ArgumentException>(() => new AugmentedDataView(Source(), "Label", "ImagePath",
            [new SyntheticRowValue("cat", a, 0.29f, Group: 3), new SyntheticRowValue("dog", b, 0.71f, Group: 3)]));
        Assert.Contains("both in group 3 but hold different images", twoImages.Message);

        var taken = _ml.Transforms.CopyColumns("SyntheticGroup", "Other").Fit(Source()).Transform(Source());
        Assert.Contains("'SyntheticGroup'", Assert.Throws<ArgumentException>(() => new AugmentedDataView(taken, "Label", "ImagePath", Synthetic())).Message);
        Assert.Contains("three different names", Assert.Throws<ArgumentException>(() =>
            new AugmentedDataView(Source(), "Label", "ImagePath", Synthetic(), weightColumn: "Flag", syntheticGroupColumn: "Flag")).Message);
    }

    [Fact]
    public void SchemaErrors_NameTheColumn()
    {
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => new AugmentedDataView(Source(), "Label", "Picture", Synthetic()));
        Assert.Contains("'Picture'", missing.Message);
        var wrongType = Assert.Throws<ArgumentOutOfRangeException>(() => new AugmentedDataView(Source(), "Label", "Other", Synthetic()));
        Assert.Contains("'Other'", wrongType.Message);
        Assert.Contains("Single", wrongType.Message);
        var floatLabel = Assert.Throws<ArgumentOutOfRangeException>(() => new AugmentedDataView(Source(), "Other", "ImagePath", Synthetic()));
        Assert.Contains("label column 'Other'", floatLabel.Message);
    }
}
