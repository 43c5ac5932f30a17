using DiffII.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.MLNet.Tests.Data;

/// <summary>Replacement mixing draws synthetic images (all rows of a <c>SyntheticGroup</c>), not rows.</summary>
public class ReplacementMixingUnitsTests
{
    static readonly string[] Classes = ["a", "b", "c"];

    /// <summary>12 originals in 3 classes, then 24 hard-labelled synthetic rows: the data the golden plans below were drawn from.</summary>
    static List<HardMixingRow> HardRows()
    {
        var rows = new List<HardMixingRow>();
        for (int i = 0; i < 12; i++) rows.Add(new HardMixingRow { Label = "c" + (i % 3), Id = i });
        for (int i = 0; i < 24; i++) rows.Add(new HardMixingRow { Label = "c" + (i % 3), IsSynthetic = true, Id = 100 + i });
        return rows;
    }

    // PlanForPass(0..2) for HardRows(), p = 0.5, seed 5, as drawn by the row-level view before synthetic groups existed (commit d546c50).
    static readonly long[][] GoldenPlans =
    [
        [4, 5, 6, 9, 11, 19, 19, 20, 26, 27, 33, 34],
        [3, 5, 7, 8, 15, 16, 24, 29, 30, 31, 34, 35],
        [1, 2, 5, 7, 8, 10, 12, 18, 24, 25, 29, 33],
    ];

    [Fact]
    public void HardLabelledImages_DrawExactlyTheRowsTheRowLevelViewDrew()
    {
        var ml = new MLContext(1);
        var hard = HardRows();
        // Without a group column, with one group per synthetic row, and with one group per row plus unit weights: the same draws.
        var withGroups = hard.Select((r, i) => new MixingRow { Label = r.Label, IsSynthetic = r.IsSynthetic, Id = r.Id, SyntheticGroup = r.IsSynthetic ? (uint)(1000 - i) : 0 }).ToList();
        var views = new[]
        {
            new ReplacementMixingDataView(ml.Data.LoadFromEnumerable(hard), "Label", probability: 0.5, seed: 5),
            new ReplacementMixingDataView(ml.Transforms.DropColumns("SampleWeight").Fit(ml.Data.LoadFromEnumerable(withGroups)).Transform(ml.Data.LoadFromEnumerable(withGroups)), "Label", probability: 0.5, seed: 5),
            new ReplacementMixingDataView(ml.Data.LoadFromEnumerable(withGroups), "Label", probability: 0.5, seed: 5),
        };
        foreach (var view in views)
        {
            for (int pass = 0; pass < GoldenPlans.Length; pass++) Assert.Equal(GoldenPlans[pass], view.PlanForPass(pass));
            Assert.Equal(12, view.GetRowCount());
        }
        Assert.Null(views[0].SyntheticGroupColumn);
        Assert.Equal("SyntheticGroup", views[2].SyntheticGroupColumn);
        Assert.Equal("SampleWeight", views[2].WeightColumn);
    }

    /// <summary>
    /// 60 originals (20 per class), then per original two Diff-Mix images (source = the original's class, target = the
    /// next class; rows: source 1 − √s, target √s, in that order) and one hard-labelled image of its class.
    /// </summary>
    static List<MixingRow> DiffMixRows(float strength = 0.5f)
    {
        float toTarget = MathF.Sqrt(strength);
        var rows = new List<MixingRow>();
        for (int i = 0; i < 60; i++) rows.Add(new MixingRow { Label = Classes[i % 3], Id = i });
        uint group = 0;
        int id = 1000;
        for (int i = 0; i < 60; i++)
        {
            string source = Classes[i % 3], target = Classes[(i + 1) % 3];
            for (int k = 0; k < 2; k++)
            {
                group++;
                rows.Add(new MixingRow { Label = source, IsSynthetic = true, SyntheticGroup = group, SampleWeight = 1 - toTarget, Id = id++ });
                rows.Add(new MixingRow { Label = target, IsSynthetic = true, SyntheticGroup = group, SampleWeight = toTarget, Id = id++ });
            }
            rows.Add(new MixingRow { Label = source, IsSynthetic = true, SyntheticGroup = ++group, Id = id++ });
        }
        return rows;
    }

    [Fact]
    public void SoftLabelledImages_AreDrawnWhole_WithTheirWeights_OneImagePerReplacedOriginal_AtAboutP()
    {
        var ml = new MLContext(1);
        var source = DiffMixRows();
        var byId = source.ToDictionary(r => r.Id);
        var groupSize = source.Where(r => r.IsSynthetic).GroupBy(r => r.SyntheticGroup).ToDictionary(g => g.Key, g => g.Count());
        // The class an image stands in for: its largest weight's label.
        var imageClass = source.Where(r => r.IsSynthetic).GroupBy(r => r.SyntheticGroup).ToDictionary(g => g.Key, g => g.MaxBy(r => r.SampleWeight)!.Label);
        var mixed = new ReplacementMixingDataView(ml.Data.LoadFromEnumerable(source), "Label", probability: 0.5, seed: 11);
        Assert.Null(mixed.GetRowCount()); // a pass's length depends on how many two-row images it draws

        int passes = 40, images = 0;
        bool sawDoubleDraw = false;
        for (int pass = 0; pass < passes; pass++)
        {
            var rows = ml.Data.CreateEnumerable<MixingRow>(mixed, reuseRowObject: false).ToList();
            Assert.Equal(mixed.PlanForPass(pass).Select(r => source[(int)r].Id), rows.Select(r => r.Id));
            // Every row arrives exactly as it is in the source: same label, same weight, same group.
            Assert.All(rows, r => Assert.Equal((byId[r.Id].Label, byId[r.Id].IsSynthetic, byId[r.Id].SampleWeight, byId[r.Id].SyntheticGroup),
                (r.Label, r.IsSynthetic, r.SampleWeight, r.SyntheticGroup)));

            var drawn = rows.Where(r => r.IsSynthetic).GroupBy(r => r.SyntheticGroup).ToList();
            foreach (var image in drawn)
            {
                // Never split: each row of the image comes as often as the others, so the image is drawn a whole number of times.
                var perRow = image.GroupBy(r => r.Id).Select(g => g.Count()).ToList();
                Assert.Equal(groupSize[image.Key], perRow.Count);
                Assert.Single(perRow.Distinct());
                images += perRow[0];
                sawDoubleDraw |= perRow[0] > 1;
            }
            // One image per replaced original, of the replaced original's class: each class keeps its count of "examples".
            var originals = rows.Where(r => !r.IsSynthetic).ToList();
            Assert.Equal(60, originals.Count + drawn.Sum(image => image.Count() / groupSize[image.Key]));
            foreach (var c in Classes)
                Assert.Equal(20, originals.Count(r => r.Label == c) + drawn.Where(image => imageClass[image.Key] == c).Sum(image => image.Count() / groupSize[image.Key]));
            // Each image's weights sum to 1, so every pass carries one unit of label mass per original.
            Assert.Equal(60, rows.Sum(r => r.SampleWeight), 3);
        }
        Assert.True(sawDoubleDraw, "with 3 images per original, some pass should draw one image twice");
        // 2400 draws at p = 0.5: within ±4 standard deviations (σ ≈ 24.5).
        Assert.InRange(images, 1200 - 98, 1200 + 98);
        Assert.Equal(passes, mixed.PassesStarted);
    }

    [Fact]
    public void RowIds_AreUniqueInEveryPass_EvenWhenAnImageIsDrawnTwice()
    {
        var ml = new MLContext(1);
        var mixed = new ReplacementMixingDataView(ml.Data.LoadFromEnumerable(DiffMixRows()), "Label", probability: 1.0, seed: 2);
        for (int pass = 0; pass < 5; pass++)
        {
            using var cursor = mixed.GetRowCursor([]);
            var id = cursor.GetIdGetter();
            var ids = new HashSet<DataViewRowId>();
            long rows = 0;
            while (cursor.MoveNext()) { DataViewRowId value = default; id(ref value); ids.Add(value); rows++; }
            Assert.Equal(mixed.PlanForPass(pass).Count, rows);
            Assert.Equal(rows, ids.Count);
            Assert.True(rows > 60); // p = 1: every original replaced, a third of them by one-row images
        }
    }

    [Fact]
    public void DiffMixMinorityRow_NeverStandsInForAnOriginal_OfItsOwnClass()
    {
        var ml = new MLContext(1);
        // Class a's only synthetic rows are the minority (1 − √0.5 ≈ 0.29) rows of images edited from a towards b.
        var rows = new List<MixingRow>();
        for (int i = 0; i < 10; i++) rows.Add(new MixingRow { Label = i % 2 == 0 ? "a" : "b", Id = i });
        for (uint g = 1; g <= 5; g++)
        {
            rows.Add(new MixingRow { Label = "a", IsSynthetic = true, SyntheticGroup = g, SampleWeight = 0.29f, Id = 100 + 2 * g });
            rows.Add(new MixingRow { Label = "b", IsSynthetic = true, SyntheticGroup = g, SampleWeight = 0.71f, Id = 101 + 2 * g });
        }
        var mixed = new ReplacementMixingDataView(ml.Data.LoadFromEnumerable(rows), "Label", probability: 1.0, seed: 3);
        for (int pass = 0; pass < 10; pass++)
        {
            var yielded = ml.Data.CreateEnumerable<MixingRow>(mixed, reuseRowObject: false).ToList();
            // a has no image of its own (each image is mostly b), so its five originals stay; b's five are replaced by whole images.
            Assert.Equal(5, yielded.Count(r => !r.IsSynthetic && r.Label == "a"));
            Assert.Equal(0, yielded.Count(r => !r.IsSynthetic && r.Label == "b"));
            var minority = yielded.Where(r => r.IsSynthetic && r.Label == "a").ToList();
            Assert.Equal(5, minority.Count);
            Assert.All(minority, r => Assert.Equal(0.29f, r.SampleWeight));
            Assert.Equal(minority.Select(r => r.SyntheticGroup).Order(), yielded.Where(r => r.IsSynthetic && r.Label == "b").Select(r => r.SyntheticGroup).Order());
            // Label mass per pass: a keeps its 5 and gets 5 × 0.29 along with b's images; b gets 5 × 0.71 (the row-level view gave b 5 × 1 or a 5 full rows).
            Assert.Equal(5 + 5 * 0.29, yielded.Where(r => r.Label == "a").Sum(r => r.SampleWeight), 4);
            Assert.Equal(5 * 0.71, yielded.Where(r => r.Label == "b").Sum(r => r.SampleWeight), 4);
        }
    }

    [Fact]
    public void EqualWeights_GoToTheLabelThatComesFirst()
    {
        var ml = new MLContext(1);
        var rows = new List<MixingRow>
        {
            new() { Label = "a", Id = 0 },
            new() { Label = "b", Id = 1 },
            new() { Label = "b", IsSynthetic = true, SyntheticGroup = 7, SampleWeight = 0.5f, Id = 2 },
            new() { Label = "a", IsSynthetic = true, SyntheticGroup = 7, SampleWeight = 0.5f, Id = 3 },
        };
        var mixed = new ReplacementMixingDataView(ml.Data.LoadFromEnumerable(rows), "Label", probability: 1.0);
        // The image counts as b: b's original is replaced by both its rows, a's original stays.
        Assert.Equal([0L, 2, 3], mixed.PlanForPass(0));
    }

    [Fact]
    public void WeightedRowsWithoutGroups_AreRefused_UnlessDeclaredImagesOfTheirOwn()
    {
        var ml = new MLContext(1);
        var noGroups = ml.Transforms.DropColumns("SyntheticGroup").Fit(ml.Data.LoadFromEnumerable(DiffMixRows())).Transform(ml.Data.LoadFromEnumerable(DiffMixRows()));
        var refused = Assert.Throws<InvalidDataException>(() => new ReplacementMixingDataView(noGroups, "Label").PlanForPass(0));
        Assert.Contains("no synthetic group column 'SyntheticGroup'", refused.Message);
        Assert.Contains("'SampleWeight'", refused.Message);
        Assert.Contains("syntheticGroupColumn: null", refused.Message);

        // Declared: every synthetic row is an image of its own, drawn alone, keeping its weight.
        var rowLevel = new ReplacementMixingDataView(noGroups, "Label", probability: 1.0, syntheticGroupColumn: null);
        Assert.Equal(60, rowLevel.GetRowCount());
        Assert.Equal(60, rowLevel.GetColumn<bool>("IsSynthetic").Count(s => s));
        Assert.Null(rowLevel.SyntheticGroupColumn);
    }

    [Fact]
    public void BadGroupsAndWeights_AreNamed()
    {
        var ml = new MLContext(1);
        IDataView Load(IEnumerable<MixingRow> rows) => ml.Data.LoadFromEnumerable(rows.ToList());
        var good = DiffMixRows();

        var asFloat = ml.Transforms.Conversion.ConvertType("SyntheticGroup", outputKind: DataKind.Single).Fit(Load(good)).Transform(Load(good));
        var wrongType = Assert.Throws<ArgumentOutOfRangeException>(() => new ReplacementMixingDataView(asFloat, "Label"));
        Assert.Contains("synthetic group column 'SyntheticGroup' has type Single", wrongType.Message);
        var weightAsGroup = Assert.Throws<ArgumentOutOfRangeException>(() => new ReplacementMixingDataView(Load(good), "Label", weightColumn: "SyntheticGroup"));
        Assert.Contains("weight column 'SyntheticGroup' has type UInt32", weightAsGroup.Message);

        var ungroupedSynthetic = good.Select(r => r.Id == 1001 ? new MixingRow { Label = r.Label, IsSynthetic = true, SampleWeight = r.SampleWeight, Id = r.Id } : r);
        var zero = Assert.Throws<InvalidDataException>(() => new ReplacementMixingDataView(Load(ungroupedSynthetic), "Label").GetRowCount());
        Assert.Contains("Row 61 is synthetic but its synthetic group 'SyntheticGroup' is 0", zero.Message);

        var groupedOriginal = good.Select(r => r.Id == 3 ? new MixingRow { Label = r.Label, SyntheticGroup = 9, Id = r.Id } : r);
        var original = Assert.Throws<InvalidDataException>(() => new ReplacementMixingDataView(Load(groupedOriginal), "Label").GetRowCount());
        Assert.Contains("Row 3 is an original ('IsSynthetic' false) but its synthetic group 'SyntheticGroup' is 9", original.Message);

        var negative = good.Select(r => r.Id == 1000 ? new MixingRow { Label = r.Label, IsSynthetic = true, SyntheticGroup = r.SyntheticGroup, SampleWeight = -0.3f, Id = r.Id } : r);
        Assert.Contains("weight -0.3 in 'SampleWeight'", Assert.Throws<InvalidDataException>(() => new ReplacementMixingDataView(Load(negative), "Label").GetRowCount()).Message);

        var noWeights = ml.Transforms.DropColumns("SampleWeight").Fit(Load(good)).Transform(Load(good));
        var unweighted = Assert.Throws<InvalidDataException>(() => new ReplacementMixingDataView(noWeights, "Label").GetRowCount());
        Assert.Contains("Synthetic image 1 (group column 'SyntheticGroup') has 2 rows", unweighted.Message);
        Assert.Contains("no weight column 'SampleWeight'", unweighted.Message);
    }
}
