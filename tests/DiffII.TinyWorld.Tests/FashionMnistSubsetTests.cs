namespace DiffII.TinyWorld.Tests;

public class FashionMnistSubsetTests
{
    [Fact]
    public void ShippedSubset_IsFoundBalancedAndReadable()
    {
        string? folder = FashionMnistSubset.Find();
        Assert.NotNull(folder);
        var train = FashionMnist.Load(FashionMnistSplit.Train, folder);
        var test = FashionMnist.Load(FashionMnistSplit.Test, folder);
        Assert.Equal(100, train.Count);
        Assert.Equal(500, test.Count);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(10, train.Labels.Count(l => l == c)));
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(50, test.Labels.Count(l => l == c)));
    }

    [Fact]
    public void ShippedSubset_IsExactlyWhatTheRecipeMakesFromTheFullDataset()
    {
        // CI installs Debian's dataset-fashion-mnist (see .ci/run), so this comparison runs there.
        Assert.True(File.Exists(Path.Combine(FashionMnist.DebianFolder, "train-images-idx3-ubyte.gz")),
            "Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist");
        string temp = Directory.CreateTempSubdirectory("diffii-subset-").FullName;
        try
        {
            FashionMnistSubset.Write(FashionMnist.Load(FashionMnistSplit.Train), FashionMnist.Load(FashionMnistSplit.Test), temp,
                FashionMnistSubset.TrainPerClass, FashionMnistSubset.TestPerClass, FashionMnistSubset.Seed);
            string shipped = FashionMnistSubset.Find()!;
            foreach (var file in Directory.GetFiles(temp))
            {
                var made = FashionMnist.Load(file.Contains("train") ? FashionMnistSplit.Train : FashionMnistSplit.Test, temp);
                var ours = FashionMnist.Load(file.Contains("train") ? FashionMnistSplit.Train : FashionMnistSplit.Test, shipped);
                Assert.Equal(made.Pixels, ours.Pixels);
                Assert.Equal(made.Labels, ours.Labels);
            }
        }
        finally { Directory.Delete(temp, true); }
    }
}
