using System.Globalization;

namespace DiffII.Experiments.Tiny;

/// <summary>
/// The experiment's result in words: each augmented method against the originals, per shot count and test set, as a
/// difference in accuracy points, and whether that difference is beyond the seed-to-seed spread.
/// </summary>
/// <remarks>
/// "Beyond the spread" means the difference of the means is larger than the larger of the two methods' sample
/// standard deviations over seeds: a plain, conservative reading, not a significance test. With one seed there is no
/// spread, and the sentence says so instead of guessing.
/// </remarks>
public static class AugmentationVerdict
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static IReadOnlyList<string> Sentences(IReadOnlyList<SummaryRow> summary, string trainer, IReadOnlyList<int> shots)
    {
        var sentences = new List<string>();
        foreach (int k in shots)
        {
            var rows = summary.Where(r => r.Trainer == trainer && r.Shots == k).ToList();
            var original = rows.FirstOrDefault(r => r.Method == ExperimentMethod.Original.Name);
            if (original is null) continue;
            foreach (var row in rows.Where(r => r != original))
            {
                var inDistribution = Compare(row.InDistributionMean, row.InDistributionStd, original.InDistributionMean, original.InDistributionStd);
                var shifted = Compare(row.ShiftedMean, row.ShiftedStd, original.ShiftedMean, original.ShiftedStd);
                string reading = (inDistribution.Word, shifted.Word) switch
                {
                    ("helped", "helped") => "it helped on both test sets",
                    ("hurt", "hurt") => "it hurt on both test sets",
                    (null, null) => Direction(inDistribution.Points, shifted.Points) +
                        $"; with {row.Seeds} seed{(row.Seeds == 1 ? "" : "s")} the seed-to-seed spread is unknown (--seeds 1,2,3 measures it)",
                    _ => $"in-distribution {inDistribution.Word ?? "unclear"}, shifted {shifted.Word ?? "unclear"}",
                };
                sentences.Add(string.Create(Inv,
                    $"{k}-shot, {trainer}: {row.Method} vs original: {Signed(inDistribution.Points)} points in-distribution " +
                    $"({100 * row.InDistributionMean:F1} vs {100 * original.InDistributionMean:F1} %), {Signed(shifted.Points)} shifted " +
                    $"({100 * row.ShiftedMean:F1} vs {100 * original.ShiftedMean:F1} %): {reading}."));
            }
        }
        return sentences;
    }

    /// <summary>Points of difference and "helped", "hurt", "within the seed spread", or null when there is no spread.</summary>
    static (double Points, string? Word) Compare(double mean, double std, double originalMean, double originalStd)
    {
        double points = 100 * (mean - originalMean);
        if (double.IsNaN(std) || double.IsNaN(originalStd)) return (points, null);
        double spread = 100 * Math.Max(std, originalStd);
        string word = Math.Abs(points) <= spread
            ? string.Create(Inv, $"within the seed spread (±{spread:F1})")
            : points > 0 ? "helped" : "hurt";
        return (points, word);
    }

    static string Direction(double inDistribution, double shifted) => (inDistribution, shifted) switch
    {
        ( > 0, > 0) => "higher on both test sets",
        ( < 0, < 0) => "lower on both test sets",
        _ => "mixed",
    };

    static string Signed(double points) => points.ToString("+0.0;−0.0;0.0", Inv);
}
