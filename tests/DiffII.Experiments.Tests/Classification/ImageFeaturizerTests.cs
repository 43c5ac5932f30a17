using DiffII.Experiments.Classification;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Tests.Classification;

[Collection(ToyShapesCollection.Name)]
public sealed class ImageFeaturizerTests(ToyShapes toy)
{
    sealed class BytesRow
    {
        public string Label { get; set; } = "";
        public byte[] Image { get; set; } = [];
    }

    sealed class FeaturesOut
    {
        [VectorType(ImageFeaturizer.FeatureCount)] public float[] Features { get; set; } = [];
    }

    string[] TwoImages() => ["train-red-disc-0.png", "train-blue-triangle-1.png"];

    [Fact]
    public void PathBytesAndMLImage_GiveTheSameFeatures_AndOnlyFeaturesAreAdded()
    {
        var paths = toy.Ml.Data.LoadFromEnumerable(TwoImages().Select(p => new ToyShapes.ImageRow { Label = "x", ImagePath = p }).ToList());
        var (_, fromPaths) = ImageFeaturizer.Featurize(toy.Ml, paths, new ImageFeaturizerOptions { ImageColumn = "ImagePath", ImageFolder = toy.Folder });
        Assert.Equal(["Label", "ImagePath", "Features"], fromPaths.Schema.Where(c => !c.IsHidden).Select(c => c.Name).ToArray());
        var featuresType = Assert.IsType<VectorDataViewType>(fromPaths.Schema["Features"].Type);
        Assert.Equal(NumberDataViewType.Single, featuresType.ItemType);
        Assert.Equal(ImageFeaturizer.FeatureCount, featuresType.Size); // dimensions 1×512×1×1, as the ONNX model has it

        var bytes = toy.Ml.Data.LoadFromEnumerable(TwoImages().Select(p => new BytesRow { Label = "x", Image = File.ReadAllBytes(Path.Combine(toy.Folder, p)) }).ToList());
        var (bytesFeaturizer, fromBytes) = ImageFeaturizer.Featurize(toy.Ml, bytes, new ImageFeaturizerOptions { ImageColumn = "Image", FeaturesColumn = "Embedding" });

        var loaded = toy.Ml.Transforms.LoadImages("Picture", toy.Folder, "ImagePath").Fit(paths).Transform(paths);
        var (_, fromImages) = ImageFeaturizer.Featurize(toy.Ml, loaded, new ImageFeaturizerOptions { ImageColumn = "Picture", CacheFeatures = false });

        var a = fromPaths.GetColumn<float[]>("Features").ToArray();
        var b = fromBytes.GetColumn<float[]>("Embedding").ToArray();
        var c = fromImages.GetColumn<float[]>("Features").ToArray();
        Assert.Equal(2, a.Length);
        Assert.True(a[0].Max() > 0 && a[0].All(float.IsFinite));
        // Different images, different features; the same image by any route, the same features.
        Assert.True(a[0].Zip(a[1]).Max(p => Math.Abs(p.First - p.Second)) > 0.1f);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(a[i], b[i]);
            Assert.Equal(a[i], c[i]);
        }

        // A saved byte-decoding featurizer loads in a fresh context through ClassifierModel.Load (which registers the mapping).
        string path = Path.Combine(toy.Folder, "bytes-featurizer.zip");
        toy.Ml.Model.Save(bytesFeaturizer, bytes.Schema, path);
        var ml = new MLContext(3);
        var reloaded = ClassifierModel.Load(ml, path, out _);
        var again = reloaded.Transform(bytes).GetColumn<float[]>("Embedding").ToArray();
        Assert.Equal(b[0], again[0]);
    }

    [Fact]
    public void BadInput_IsNamed()
    {
        var rows = toy.Ml.Data.LoadFromEnumerable(new[] { new ToyShapes.FeatureRow { Label = "x", Features = new float[ImageFeaturizer.FeatureCount] } });
        var wrongType = Assert.Throws<ArgumentOutOfRangeException>(() => ImageFeaturizer.Create(toy.Ml, rows.Schema, new ImageFeaturizerOptions { ImageColumn = "SampleWeight" }));
        Assert.Contains("'SampleWeight'", wrongType.Message);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ImageFeaturizer.Create(toy.Ml, rows.Schema, new ImageFeaturizerOptions { ImageColumn = "Photo" }));
        Assert.Contains("image column 'Photo'", missing.Message);
        var noModel = Assert.Throws<FileNotFoundException>(() => ImageFeaturizer.Create(toy.Ml, rows.Schema,
            new ImageFeaturizerOptions { ImageColumn = "Label", ModelDirectory = Path.Combine(toy.Folder, "no-models") }));
        Assert.Contains("ResNetPreprocess.onnx", noModel.Message);

        var undecodable = toy.Ml.Data.LoadFromEnumerable(new[] { new BytesRow { Image = [1, 2, 3, 4] } });
        var (_, features) = ImageFeaturizer.Featurize(toy.Ml, undecodable, new ImageFeaturizerOptions { ImageColumn = "Image", CacheFeatures = false });
        var error = Assert.ThrowsAny<Exception>(() => features.GetColumn<float[]>("Features").ToArray());
        Assert.Contains("01020304", Flatten(error));
    }

    static string Flatten(Exception e) => e.InnerException is null ? e.Message : e.Message + " | " + Flatten(e.InnerException);
}
