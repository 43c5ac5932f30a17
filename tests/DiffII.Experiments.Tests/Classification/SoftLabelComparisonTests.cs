using DiffII.Experiments.Classification;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace DiffII.MLNet.Tests.Classification;

/// <summary>The comparison's replacement arms draw whole soft-labelled images and give the trainers their weights.</summary>
public sealed class SoftLabelComparisonTests(ITestOutputHelper output)
{
    sealed class Row
    {
        public string Label { get; set; } = "";
        public bool IsSynthetic { get; set; }
        public float SampleWeight { get; set; } = 1f;
        public uint SyntheticGroup { get; set; }
        [VectorType(8)] public float[] Features { get; set; } = [];
    }

    static readonly string[] Classes = ["a", "b", "c"];

    /// <summary>Features of class c: noise in [0, 1) plus 1.5 in feature c.</summary>
    static float[] Features(Random random, int c) => Enumerable.Range(0, 8).Select(j => (float)random.NextDouble() + (j == c ? 1.5f : 0f)).ToArray();

    /// <summary>
    /// 60 originals (20 per class), then per original one two-row image that looks like its class x and is labelled
    /// x: <paramref name="major"/>, previous(x): <paramref name="minor"/>: a soft label whose largest weight is the class it shows.
    /// </summary>
    static (List<Row> Train, List<Row> Test) Data(float major, float minor)
    {
        var random = new Random(5);
        var train = new List<Row>();
        for (int i = 0; i < 60; i++) train.Add(new Row { Label = Classes[i % 3], Features = Features(random, i % 3) });
        for (int i = 0; i < 60; i++)
        {
            int x = i % 3;
            var features = Features(random, x);
            train.Add(new Row { Label = Classes[x], IsSynthetic = true, SampleWeight = major, SyntheticGroup = (uint)(i + 1), Features = features });
            train.Add(new Row { Label = Classes[(x + 2) % 3], IsSynthetic = true, SampleWeight = minor, SyntheticGroup = (uint)(i + 1), Features = features });
        }
        var test = Enumerable.Range(0, 30).Select(i => new Row { Label = Classes[i % 3], Features = Features(random, i % 3) }).ToList();
        return (train, test);
    }

    static ComparisonResult Run(MLContext ml, List<Row> train, List<Row> test) =>
        ClassifierComparison.Run(ml, ml.Data.Cache(ml.Data.LoadFromEnumerable(train)), ml.Data.LoadFromEnumerable(test), new ClassifierComparisonOptions
        {
            Trainers = [ClassifierTrainer.LbfgsMaximumEntropy(), ClassifierTrainer.SdcaMaximumEntropy(), ClassifierTrainer.LightGbm(minimumExamplesPerLeaf: 2)],
            // p = 1: every original is replaced by an image, so the images' labels are all the trainers learn from.
            Mixings = [AugmentationMixing.Replacement(1.0, stackedPasses: 2)],
        });

    [Fact]
    public void ReplacementArm_DrawsWholeImages_AndTrainsWithTheirWeights()
    {
        var ml = new MLContext(1);
        var (train, test) = Data(major: 0.9f, minor: 0.1f);
        var weighted = Run(ml, train, test);
        output.WriteLine(weighted.ToTable());

        // The same images with both labels at full weight: what the trainers would learn if the weights were dropped.
        var (flatTrain, _) = Data(major: 1f, minor: 1f);
        var flat = Run(ml, flatTrain, test);
        output.WriteLine(flat.ToTable());

        foreach (var trainer in new[] { "LbfgsMaximumEntropy", "SdcaMaximumEntropy", "LightGbm" })
        {
            var soft = weighted.Rows.Single(r => r.Trainer == trainer && r.Mode == "replacement(p=1)");
            var dropped = flat.Rows.Single(r => r.Trainer == trainer && r.Mode == "replacement(p=1)");
            // Each image replaces one original with both its rows: 120 rows a pass; the stacked trainers get 2 passes.
            Assert.Equal(trainer == "LbfgsMaximumEntropy" ? 120 : 240, soft.TrainingRows);
            // Weighted 0.9 / 0.1, the class an image shows wins clearly: the log loss is near −ln 0.9 ≈ 0.11 plus what
            // the learner gets wrong. Unweighted, every image says its class and the previous one equally: near ln 2.
            Assert.True(soft.LogLoss < 0.45, $"{trainer} weighted: log loss {soft.LogLoss}");
            Assert.True(dropped.LogLoss > 0.6, $"{trainer} unweighted: log loss {dropped.LogLoss}");
            Assert.True(soft.MicroAccuracy >= 0.9, $"{trainer} weighted: accuracy {soft.MicroAccuracy}");
        }
    }

    [Fact]
    public void BadGroups_FailBeforeAnyTraining_NamingTheColumn()
    {
        var ml = new MLContext(1);
        var (train, test) = Data(major: 0.9f, minor: 0.1f);
        var options = new ClassifierComparisonOptions { Trainers = [ClassifierTrainer.LbfgsMaximumEntropy()], Mixings = [AugmentationMixing.Replacement()] };

        var data = ml.Data.LoadFromEnumerable(train);
        var asFloat = ml.Transforms.Conversion.ConvertType("SyntheticGroup", outputKind: DataKind.Single).Fit(data).Transform(data);
        var wrongType = Assert.Throws<ArgumentOutOfRangeException>(() => ClassifierComparison.Run(ml, asFloat, ml.Data.LoadFromEnumerable(test), options));
        Assert.Contains("synthetic group column 'SyntheticGroup' of the training data has type Single", wrongType.Message);

        // One image's second row lost its group: it is reported, not trained around.
        train[61].SyntheticGroup = 0;
        var zero = Assert.Throws<InvalidDataException>(() => ClassifierComparison.Run(ml, ml.Data.LoadFromEnumerable(train), ml.Data.LoadFromEnumerable(test), options));
        Assert.Contains("Row 61 is synthetic but its synthetic group 'SyntheticGroup' is 0", zero.Message);
    }
}
