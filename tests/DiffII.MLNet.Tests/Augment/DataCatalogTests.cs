using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Tests.Augment;

[Collection(TinyAugmentCollection.Name)]
public sealed class DataCatalogTests(TinyAugment tiny)
{
    static List<(string Label, string Path, bool IsSynthetic)> Rows(IDataView view) =>
        [.. view.GetColumn<string>("Label").Zip(view.GetColumn<string>("ImagePath"), view.GetColumn<bool>("IsSynthetic")).Select(r => (r.First, r.Second, r.Third))];

    [Fact]
    public void DataDiffIIAugment_AppendsTheSyntheticRows_AsTheEstimatorDoes()
    {
        // The same options and cache folder as the shared fit: the work is reused, and the rows must be the same.
        var augmented = tiny.Ml.Data.DiffIIAugment(tiny.Train, TinyAugment.Options(Path.Combine(tiny.Root, "cache-path")));
        var expected = Rows(tiny.PathFit.Transform(tiny.Train));
        var got = Rows(augmented);
        Assert.Equal(expected, got);
        int originals = TinyAugment.Classes.Sum(c => c.Count);
        Assert.Equal(originals, got.Count(r => !r.IsSynthetic));
        Assert.Equal(2 * originals, got.Count(r => r.IsSynthetic)); // expansion rate 2
        Assert.Equal(BooleanDataViewType.Instance, augmented.Schema["IsSynthetic"].Type);
    }

    [Fact]
    public void DataDiffIIAugment_RejectsMissingArguments()
    {
        Assert.Throws<ArgumentNullException>(() => tiny.Ml.Data.DiffIIAugment(null!, TinyAugment.Options(Path.Combine(tiny.Root, "never-used"))));
        Assert.Throws<ArgumentNullException>(() => tiny.Ml.Data.DiffIIAugment(tiny.Train, null!));
    }
}
