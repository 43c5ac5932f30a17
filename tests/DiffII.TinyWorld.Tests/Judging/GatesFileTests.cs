using System.Text.Json.Nodes;
using DiffII.TinyWorld.Judging;

namespace DiffII.TinyWorld.Tests.Judging;

/// <summary>The gates file that judge-generator and tiny-experiment --gates both write into.</summary>
public sealed class GatesFileTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-gates-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    [Fact]
    public void AGateRecord_IsMergedUnderItsJsonNames_KeepingOtherKeys_AndSkippingNulls()
    {
        string path = Path.Combine(_root, "gates.json");
        File.WriteAllText(path, """{ "concept_from_noise": 9.0, "kind_prior": 55.5 }""");
        var record = new GeneratorGateResults(86.5, 85.1, 80.0, 76.6, 91.7, null, null);
        GatesFile.MergeRecord(path, record);
        var merged = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Assert.Equal(91.7, (double)merged["vae_relative"]!);
        Assert.Equal(86.5, (double)merged["judge_real_in"]!);
        Assert.Equal(9.0, (double)merged["concept_from_noise"]!);
        Assert.Equal(55.5, (double)merged["kind_prior"]!); // null in the record: the measured value stays
        Assert.False(merged.ContainsKey("kind_prior_per_kind"));
    }

    [Fact]
    public void ANewFile_IsMade_AndAnEmptyOneIsNamed()
    {
        string path = Path.Combine(_root, "new.json");
        GatesFile.Merge(path, [KeyValuePair.Create("original_in", (JsonNode?)JsonValue.Create(58.0))]);
        Assert.Equal(58.0, (double)JsonNode.Parse(File.ReadAllText(path))!["original_in"]!);
        File.WriteAllText(path, "");
        Assert.Contains(path, Assert.Throws<InvalidDataException>(() => GatesFile.MergeRecord(path, new GeneratorGateResults(1, 1, 1, 1, 1, null, null))).Message);
    }
}
