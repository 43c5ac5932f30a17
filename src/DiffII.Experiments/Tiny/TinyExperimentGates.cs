using System.Text.Json.Nodes;
using DiffII.Augmentation;
using DiffII.TinyWorld.Judging;

namespace DiffII.Experiments.Tiny;

/// <summary>
/// The generator gates a tiny experiment measures (issue 16's gates.json keys, in percent): the 5-shot means of the
/// originals and of Diff-II (at the paper's split ratio) on both test sets for the first trainer, the seed spread,
/// the judge's faithfulness of the Diff-II images, and the concept gate. Gates the run did not measure are left out,
/// so merging never overwrites a number with nothing.
/// </summary>
public static class TinyExperimentGates
{
    /// <summary>The shot count the accuracy gates are defined at.</summary>
    public const int GateShots = 5;

    public static IReadOnlyDictionary<string, double> Of(IReadOnlyList<RunResult> runs, TinyExperimentOptions options)
    {
        var gates = new Dictionary<string, double>();
        string diffII = ExperimentMethod.Of(Strategy.DiffII).Name;
        var atGate = runs.Where(r => r.Shots == GateShots).ToList();
        var summary = TinyExperimentReport.Summarise(atGate);
        string? trainer = summary.Select(r => r.Trainer).FirstOrDefault();
        var original = summary.FirstOrDefault(r => r.Trainer == trainer && r.Method == ExperimentMethod.Original.Name);
        var augmented = summary.FirstOrDefault(r => r.Trainer == trainer && r.Method == diffII);
        if (original is not null)
        {
            gates["original_in"] = 100 * original.InDistributionMean;
            gates["original_shifted"] = 100 * original.ShiftedMean;
        }
        if (augmented is not null)
        {
            gates["diffii_in"] = 100 * augmented.InDistributionMean;
            gates["diffii_shifted"] = 100 * augmented.ShiftedMean;
            if (augmented.FaithfulnessMean is double f && options.JudgePath is not null) gates["diffii_faithfulness"] = 100 * f;
        }
        // The spread the shifted comparison is judged against: the larger of the two arms' seed-to-seed std
        // (unknown with one seed, so left out).
        if (original is not null && augmented is not null && double.IsFinite(original.ShiftedStd) && double.IsFinite(augmented.ShiftedStd))
            gates["seed_std_shifted"] = 100 * Math.Max(original.ShiftedStd, augmented.ShiftedStd);
        var concept = atGate.Where(r => r.Method == diffII).Select(r => r.ConceptFromNoise).OfType<double>().ToList();
        if (concept.Count > 0) gates["concept_from_noise"] = 100 * concept.Average();
        return gates;
    }

    /// <summary>Merges <paramref name="gates"/> into the gates file at <paramref name="path"/>, keeping its other keys.</summary>
    public static void Merge(string path, IReadOnlyDictionary<string, double> gates) =>
        GatesFile.Merge(path, gates.Select(g => KeyValuePair.Create(g.Key, (JsonNode?)JsonValue.Create(Math.Round(g.Value, 2)))));
}
