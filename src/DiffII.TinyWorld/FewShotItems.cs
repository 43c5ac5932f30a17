namespace DiffII.TinyWorld;

/// <summary>
/// Which Fashion-MNIST items make up a few-shot set: per class, a seeded shuffle of the class's items, of which the
/// first K are taken. The same seed gives the same order whatever K is, so the 1-shot set of a seed is inside its
/// 5-shot set, which is inside its 10-shot set. The experiment draws its sets here, and the judge leaves out every item
/// any set within <see cref="JudgeSeeds"/> × <see cref="JudgeShots"/> can contain.
/// </summary>
public static class FewShotItems
{
    /// <summary>The seeds and the largest shot count whose items the judge never trains on.</summary>
    public const int JudgeSeeds = 10, JudgeShots = 20;

    /// <summary>Per class, a seeded uniform sample of <paramref name="perClass"/> item indices (sorted, so files come in item order).</summary>
    public static List<(int Label, int Item)> Pick(FashionMnist set, int perClass, long seed, IReadOnlySet<int>? exclude = null)
    {
        var picked = new List<(int, int)>();
        for (int label = 0; label < FashionMnist.ClassNames.Count; label++)
        {
            var candidates = Enumerable.Range(0, set.Count).Where(i => set.Labels[i] == label && (exclude is null || !exclude.Contains(i))).ToArray();
            if (candidates.Length < perClass)
                throw new ArgumentException($"Fashion-MNIST has only {candidates.Length} usable items of class '{FashionMnist.ClassNames[label]}' here; {perClass} were asked for. " +
                                            "Install the full data set (apt-get install dataset-fashion-mnist) or ask for fewer.");
            new Random(unchecked((int)(seed * 1000003 + label))).Shuffle(candidates);
            picked.AddRange(candidates.Take(perClass).Order().Select(i => (label, i)));
        }
        return picked;
    }

    /// <summary>Every training item that a few-shot set with seed 1..<see cref="JudgeSeeds"/> and up to <see cref="JudgeShots"/> shots can hold.</summary>
    public static IReadOnlySet<int> ForJudge(FashionMnist train) =>
        Enumerable.Range(1, JudgeSeeds).SelectMany(seed => Pick(train, JudgeShots, seed)).Select(p => p.Item).ToHashSet();
}
