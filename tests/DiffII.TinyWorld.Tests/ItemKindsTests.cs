namespace DiffII.TinyWorld.Tests;

public class ItemKindsTests
{
    [Fact]
    public void EveryClassHasAKind_AndTheKindsGroupTheFineGrainedClasses()
    {
        var names = FashionMnist.ClassNames;
        string KindOf(string name) => ItemKinds.WordOf(names.ToList().IndexOf(name));
        Assert.All(new[] { "t-shirt", "pullover", "coat", "shirt" }, n => Assert.Equal("top", KindOf(n)));
        Assert.All(new[] { "sandal", "sneaker", "ankle-boot" }, n => Assert.Equal("footwear", KindOf(n)));
        Assert.Equal(("trousers", "dress", "bag"), (KindOf("trouser"), KindOf("dress"), KindOf("bag")));
        // LabelsOf inverts KindOf.
        for (int kind = 0; kind < ItemKinds.Words.Count; kind++)
            Assert.All(ItemKinds.LabelsOf(kind), label => Assert.Equal(kind, ItemKinds.KindOf(label)));
        Assert.Equal(names.Count, Enumerable.Range(0, ItemKinds.Words.Count).Sum(k => ItemKinds.LabelsOf(k).Count));
    }

    [Fact]
    public void KindCaptions_NameTheKind_NeverAFineGrainedClass_AndUseOnlyVocabularyWords()
    {
        var random = new Random(4);
        var vocabulary = Scene.Vocabulary().ToHashSet();
        // Trousers, dress and bag are kinds of one class each, so naming the kind names the class; the classes that
        // share a kind (the four tops, the three kinds of footwear) are what concept learning must tell apart.
        var fineGrained = Enumerable.Range(0, FashionMnist.ClassNames.Count)
            .Where(label => ItemKinds.LabelsOf(ItemKinds.KindOf(label)).Count > 1).Select(label => FashionMnist.ClassNames[label]).ToList();
        Assert.Equal(7, fineGrained.Count);
        for (int i = 0; i < 200; i++)
        {
            var scene = SceneDistribution.Everything.Sample(random);
            string kind = ItemKinds.Words[i % ItemKinds.Words.Count];
            foreach (var caption in new[] { scene.CaptionOf(kind), scene.PartialCaptionOf(kind, random, 0.5) })
            {
                var words = caption.Split(' ');
                Assert.Contains(kind, words);
                Assert.DoesNotContain("clothing", words);
                Assert.DoesNotContain(words, w => fineGrained.Contains(w));
                Assert.All(words, w => Assert.Contains(w, vocabulary));
            }
            Assert.Equal(scene.Caption, scene.CaptionOf(Scene.Metaclass));
        }
    }

    [Fact]
    public void FewShotSets_AreNested_AndTheJudgeLeavesOutEveryItemTheyCanHold()
    {
        var train = SmallWorld.InMemory(perClass: 40);
        var k1 = FewShotItems.Pick(train, 1, seed: 3);
        var k5 = FewShotItems.Pick(train, 5, seed: 3);
        var k10 = FewShotItems.Pick(train, 10, seed: 3);
        Assert.Subset(k5.ToHashSet(), k1.ToHashSet());
        Assert.Subset(k10.ToHashSet(), k5.ToHashSet());
        Assert.Equal(50, k5.Count);
        Assert.All(k5, p => Assert.Equal(p.Label, train.Labels[p.Item]));

        var excluded = FewShotItems.ForJudge(train);
        foreach (int seed in new[] { 1, 5, FewShotItems.JudgeSeeds })
            Assert.Subset(excluded.ToHashSet(), FewShotItems.Pick(train, FewShotItems.JudgeShots, seed).Select(p => p.Item).ToHashSet());
        Assert.True(excluded.Count < train.Count, "the judge must keep some items to train on");
    }
}
