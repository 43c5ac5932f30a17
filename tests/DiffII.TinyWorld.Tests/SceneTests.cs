using SkiaSharp;

namespace DiffII.TinyWorld.Tests;

public class SceneTests
{
    /// <summary>A 28×28 "item": a filled rectangle with full ink.</summary>
    static byte[] Block()
    {
        var item = new byte[28 * 28];
        for (int y = 6; y < 22; y++) for (int x = 8; x < 20; x++) item[y * 28 + x] = 255;
        return item;
    }

    [Fact]
    public void Render_PaintsTheItemInItsColour_OverThePlainBackground()
    {
        var red = Scene.Palette.Single(c => c.Name == "red");
        var blue = Scene.Palette.Single(c => c.Name == "blue");
        var scene = new Scene(BackgroundPattern.Plain, blue, red, 1.0f, 0, 0);
        var rgb = SceneRenderer.Render(Block(), scene);
        int center = 16 * 32 + 16, corner = 0;
        Assert.Equal(red.R, rgb[center], 3);            // full ink: the item's colour, unshaded
        Assert.Equal(red.B, rgb[2 * 1024 + center], 3);
        Assert.Equal(blue.B, rgb[2 * 1024 + corner], 3);  // background untouched
    }

    [Theory]
    [InlineData(BackgroundPattern.Stripes)]
    [InlineData(BackgroundPattern.Checks)]
    [InlineData(BackgroundPattern.Dots)]
    [InlineData(BackgroundPattern.Gradient)]
    public void PatternedBackgrounds_HaveTwoTones_PlainHasOne(BackgroundPattern pattern)
    {
        var gray = Scene.Palette.Single(c => c.Name == "gray");
        var rgb = SceneRenderer.Render(new byte[784], new Scene(pattern, gray, gray, 1, 0, 0));
        Assert.True(rgb.Take(1024).Distinct().Count() >= 2);
        var plain = SceneRenderer.Render(new byte[784], new Scene(BackgroundPattern.Plain, gray, gray, 1, 0, 0));
        Assert.Single(plain.Take(1024).Distinct());
    }

    [Fact]
    public void Captions_NameTheContext_NeverAClass()
    {
        var random = new Random(3);
        for (int i = 0; i < 200; i++)
        {
            var scene = SceneDistribution.Everything.Sample(random);
            Assert.StartsWith("a photo of a ", scene.Caption);
            Assert.Contains(scene.Suffix, scene.Caption);
            Assert.NotEqual(scene.Item.Name, scene.Background.Name);
            foreach (var caption in new[] { scene.Caption, scene.PartialCaption(random, 0.5) })
            {
                Assert.DoesNotContain(FashionMnist.ClassNames, name => caption.Contains(name));
                Assert.All(caption.Split(' '), word => Assert.Contains(word, Scene.Vocabulary()));
            }
        }
    }

    [Fact]
    public void FewShotAndShiftedContexts_DoNotOverlapInPattern()
    {
        Assert.Empty(SceneDistribution.FewShot.Patterns.Intersect(SceneDistribution.Shifted.Patterns));
    }

    [Fact]
    public void ToPng_EncodesADecodablePngOfTheRightSize()
    {
        var rgb = SceneRenderer.Render(Block(), SceneDistribution.Everything.Sample(new Random(1)));
        using var bitmap = SKBitmap.Decode(SceneRenderer.ToPng(rgb));
        Assert.Equal(32, bitmap.Width);
        Assert.Equal(32, bitmap.Height);
    }

    [Fact]
    public void FashionMnist_ReadsGzippedIdx_AndRejectsMismatchedCounts()
    {
        string dir = Directory.CreateTempSubdirectory("diffii-fmnist-").FullName;
        try
        {
            FashionMnistSubset.WriteIdx(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"), 0x803, [2, 28, 28], [.. Block(), .. new byte[784]]);
            FashionMnistSubset.WriteIdx(Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), 0x801, [2], [7, 9]);
            var set = FashionMnist.Load(FashionMnistSplit.Test, dir);
            Assert.Equal(2, set.Count);
            Assert.Equal(255, set.Item(0)[6 * 28 + 8]);
            Assert.Equal(9, set.Labels[1]);

            FashionMnistSubset.WriteIdx(Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), 0x801, [3], [7, 9, 1]);
            Assert.Contains("3 labels for 2 images", Assert.Throws<InvalidDataException>(() => FashionMnist.Load(FashionMnistSplit.Test, dir)).Message);
            var missing = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(FashionMnistSplit.Train, dir));
            Assert.Contains("apt-get install dataset-fashion-mnist", missing.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
