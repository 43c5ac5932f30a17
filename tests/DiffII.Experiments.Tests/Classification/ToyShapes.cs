using DiffII.Experiments.Classification;
using DiffII.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using SkiaSharp;

namespace DiffII.MLNet.Tests.Classification;

/// <summary>
/// Three clearly different classes of drawn images (a red disc, a green square, a blue triangle on light grey, at
/// varying positions and sizes), written to a temp folder and featurised once with ResNet18 for every test of the
/// collection: featurising costs a fraction of a second per image on these CPUs, training on 512 features does not.
/// </summary>
public sealed class ToyShapes : IDisposable
{
    public static readonly string[] Classes = ["blue-triangle", "green-square", "red-disc"];
    public const int TrainPerClass = 6;
    public const int TestPerClass = 3;

    public string Folder { get; } = Directory.CreateTempSubdirectory("diffii-classifier-").FullName;
    public MLContext Ml { get; } = new(seed: 1);

    public sealed class ImageRow
    {
        public string Label { get; set; } = "";
        public string ImagePath { get; set; } = "";
    }

    /// <summary>A featurised row, kept in memory so tests can build training views with any synthetic rows they like.</summary>
    public sealed class FeatureRow
    {
        public string Label { get; set; } = "";
        public bool IsSynthetic { get; set; }
        public float SampleWeight { get; set; } = 1f;
        [VectorType(ImageFeaturizer.FeatureCount)] public float[] Features { get; set; } = [];
    }

    public ToyShapes()
    {
        var random = new Random(7);
        var train = new List<ImageRow>();
        var inDistribution = new List<ImageRow>();
        var shifted = new List<ImageRow>();
        foreach (var label in Classes)
        {
            for (int i = 0; i < TrainPerClass; i++) train.Add(new ImageRow { Label = label, ImagePath = Draw(label, $"train-{label}-{i}.png", random, shiftedBackground: false, relativePath: true) });
            for (int i = 0; i < TestPerClass; i++) inDistribution.Add(new ImageRow { Label = label, ImagePath = Draw(label, $"test-{label}-{i}.png", random, shiftedBackground: false, relativePath: true) });
            for (int i = 0; i < TestPerClass; i++) shifted.Add(new ImageRow { Label = label, ImagePath = Draw(label, $"shifted-{label}-{i}.png", random, shiftedBackground: true, relativePath: true) });
        }
        // One correct synthetic image per class, with weight 0.5, added the way DiffIIAugment adds them.
        var synthetic = Classes.Select(label => new SyntheticRowValue(label, Draw(label, $"synthetic-{label}.png", random, shiftedBackground: false, relativePath: false), 0.5f)).ToList();

        var originals = Ml.Data.LoadFromEnumerable(train);
        AugmentedImages = new AugmentedDataView(originals, "Label", "ImagePath", synthetic);
        var options = new ImageFeaturizerOptions { ImageColumn = "ImagePath", ImageFolder = Folder };
        (Featurizer, AugmentedFeatures) = ImageFeaturizer.Featurize(Ml, AugmentedImages, options);
        InDistribution = Ml.Data.Cache(Featurizer.Transform(Ml.Data.LoadFromEnumerable(inDistribution)));
        Shifted = Ml.Data.Cache(Featurizer.Transform(Ml.Data.LoadFromEnumerable(shifted)));
        TrainRows = Ml.Data.CreateEnumerable<FeatureRow>(AugmentedFeatures, reuseRowObject: false).ToList();
        TestSets = new Dictionary<string, IDataView> { ["in-distribution"] = InDistribution, ["shifted"] = Shifted };
    }

    /// <summary>Training images: 18 originals then 3 synthetic rows (IsSynthetic, SampleWeight), paths relative to <see cref="Folder"/>.</summary>
    public AugmentedDataView AugmentedImages { get; }
    public ITransformer Featurizer { get; }
    public IDataView AugmentedFeatures { get; }
    public IDataView InDistribution { get; }
    public IDataView Shifted { get; }
    public IReadOnlyDictionary<string, IDataView> TestSets { get; }
    /// <summary>The featurised training rows: <see cref="AugmentedFeatures"/> in memory.</summary>
    public IReadOnlyList<FeatureRow> TrainRows { get; }

    /// <summary>Draws one image of <paramref name="label"/> and returns its path (file name only when relative).</summary>
    public string Draw(string label, string fileName, Random random, bool shiftedBackground, bool relativePath)
    {
        const int size = 64;
        using var bitmap = new SKBitmap(size, size);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(shiftedBackground ? new SKColor(40, 40, 40) : new SKColor(225, 225, 225));
            float radius = 12 + random.Next(8);
            float cx = radius + 2 + random.Next((int)(size - 2 * radius - 4));
            float cy = radius + 2 + random.Next((int)(size - 2 * radius - 4));
            using var paint = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Fill };
            switch (label)
            {
                case "red-disc":
                    paint.Color = new SKColor(220, 30, 30);
                    canvas.DrawCircle(cx, cy, radius, paint);
                    break;
                case "green-square":
                    paint.Color = new SKColor(30, 180, 40);
                    canvas.DrawRect(cx - radius, cy - radius, 2 * radius, 2 * radius, paint);
                    break;
                case "blue-triangle":
                    paint.Color = new SKColor(30, 60, 220);
                    using (var path = new SKPath())
                    {
                        path.MoveTo(cx, cy - radius);
                        path.LineTo(cx + radius, cy + radius);
                        path.LineTo(cx - radius, cy + radius);
                        path.Close();
                        canvas.DrawPath(path, paint);
                    }
                    break;
                default: throw new ArgumentException($"No drawing for class '{label}'.", nameof(label));
            }
        }
        using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        string full = Path.Combine(Folder, fileName);
        File.WriteAllBytes(full, png.ToArray());
        return relativePath ? fileName : full;
    }

    /// <summary>A featurised training view from in-memory rows.</summary>
    public IDataView TrainingView(IEnumerable<FeatureRow> rows) => Ml.Data.Cache(Ml.Data.LoadFromEnumerable(rows.ToList()));

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

[CollectionDefinition(Name)]
public sealed class ToyShapesCollection : ICollectionFixture<ToyShapes>
{
    public const string Name = "Toy shapes featurised with ResNet18";
}
