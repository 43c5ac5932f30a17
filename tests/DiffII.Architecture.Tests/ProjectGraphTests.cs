using System.Text.RegularExpressions;

namespace DiffII.Architecture.Tests;

/// <summary>
/// Data flows one way: engine ← method ← adapter ← experiments and reporting ← CLI. Each project may reference only
/// the projects listed for it; a new project must be placed here before it builds green.
/// </summary>
public class ProjectGraphTests
{
    /// <summary>Each project's allowed direct project references.</summary>
    static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["DiffII.Diffusion"] = [],
        ["DiffII"] = ["DiffII.Diffusion"],
        ["DiffII.MLNet"] = ["DiffII"],
        // The fine-tuning trainer stands beside the adapter: an ML.NET trainer on TorchSharp that needs only the engine.
        ["DiffII.MLNet.FineTuning"] = ["DiffII.Diffusion"],
        ["DiffII.Reporting"] = ["DiffII"],
        ["DiffII.TinyWorld"] = ["DiffII", "DiffII.Reporting"],
        ["DiffII.Experiments"] = ["DiffII.MLNet", "DiffII.MLNet.FineTuning", "DiffII.Reporting", "DiffII.TinyWorld"],
        ["DiffII.Cli"] = ["DiffII.MLNet", "DiffII.TinyWorld", "DiffII.Experiments"],
        ["DiffII.Bench"] = ["DiffII", "DiffII.TinyWorld", "DiffII.Reporting", "DiffII.MLNet.FineTuning"],
    };

    /// <summary>Packages that make a project an evaluation harness rather than a library: ONNX, LightGBM, the ResNet model.</summary>
    static readonly string[] HarnessPackages = ["Microsoft.ML.OnnxTransformer", "Microsoft.ML.OnnxRuntime", "Microsoft.ML.LightGbm", "Microsoft.ML.DnnImageFeaturizer.ResNet18"];

    /// <summary>
    /// Projects that know no ML.NET (its tokenizer library aside, which is not ML.NET's pipeline). The bench is not
    /// among them: it measures the fine-tuning trainer, which is an ML.NET trainer.
    /// </summary>
    static readonly string[] WithoutMLNet = ["DiffII.Diffusion", "DiffII", "DiffII.Reporting", "DiffII.TinyWorld"];

    public static TheoryData<string> ProjectNames() => [.. Allowed.Keys];

    [Fact]
    public void EveryProjectUnderSrcAndBench_HasItsPlaceInTheGraph()
    {
        var unknown = Repository.Projects.Keys.Except(Allowed.Keys).ToList();
        Assert.True(unknown.Count == 0, $"Projects without a place in the graph (add them to {nameof(Allowed)}): {string.Join(", ", unknown)}.");
        Assert.Empty(Allowed.Keys.Except(Repository.Projects.Keys));
    }

    [Theory]
    [MemberData(nameof(ProjectNames))]
    public void ProjectReferences_RunOnlyDownTheGraph(string project)
    {
        var wrong = Repository.Projects[project].ProjectReferences.Except(Allowed[project]).ToList();
        Assert.True(wrong.Count == 0, $"{project} references {string.Join(", ", wrong)}; it may reference only {string.Join(", ", Allowed[project].DefaultIfEmpty("nothing"))}.");
    }

    [Fact]
    public void TheGraph_HasNoCycles()
    {
        foreach (var project in Allowed.Keys)
            Assert.DoesNotContain(Repository.Closure(project).Skip(1), p => p.Name == project);
    }

    [Fact]
    public void TheAdapter_BringsNoOnnxLightGbmOrResNet()
    {
        var closure = Repository.Closure("DiffII.MLNet");
        var found = closure.SelectMany(p => p.PackageReferences.Intersect(HarnessPackages).Select(pkg => $"{p.Name} → {pkg}")).ToList();
        Assert.True(found.Count == 0, "Referencing DiffII.MLNet would bring " + string.Join(", ", found));
        Assert.Contains("Microsoft.ML.LightGbm", Repository.Projects["DiffII.Experiments"].PackageReferences);
    }

    [Theory]
    [MemberData(nameof(LowerProjects))]
    public void TheEngineMethodReportingAndWorld_KnowNoMLNet(string project)
    {
        var closure = Repository.Closure(project);
        var packages = closure.SelectMany(p => p.PackageReferences.Select(pkg => (p.Name, pkg)))
            .Where(x => (x.pkg == "Microsoft.ML" || x.pkg.StartsWith("Microsoft.ML.", StringComparison.Ordinal)) && x.pkg != "Microsoft.ML.Tokenizers")
            .Select(x => $"{x.Name} → {x.pkg}").ToList();
        Assert.True(packages.Count == 0, $"{project} brings ML.NET: {string.Join(", ", packages)}");
        var sources = Repository.Projects[project].Sources()
            .Where(f => File.ReadLines(f).Any(l => Regex.IsMatch(l, @"^\s*using\s+(static\s+)?Microsoft\.ML(\.(?!Tokenizers)[\w.]+)?\s*;")))
            .Select(f => Path.GetRelativePath(Repository.Root, f)).ToList();
        Assert.True(sources.Count == 0, $"{project} sources use ML.NET: {string.Join(", ", sources)}");
    }

    public static TheoryData<string> LowerProjects() => [.. WithoutMLNet];

    [Theory]
    [MemberData(nameof(ProjectNames))]
    public void Sources_UseNoNamespaceOfAProjectAbove(string project)
    {
        // The namespaces of projects this one may not reach (directly or through its references).
        var reachable = Repository.Closure(project).Select(p => p.Name).ToHashSet();
        var forbidden = Allowed.Keys.Where(p => !reachable.Contains(p) && p != "DiffII").ToList();
        var offending = new List<string>();
        foreach (var file in Repository.Projects[project].Sources())
            foreach (var line in File.ReadLines(file))
            {
                var used = Regex.Match(line, @"^\s*using\s+(static\s+)?(?<ns>[\w.]+)\s*;");
                // A namespace belongs to the project with the longest matching name (DiffII.MLNet.FineTuning is not DiffII.MLNet).
                string? owner = used.Success
                    ? Allowed.Keys.Where(p => used.Groups["ns"].Value == p || used.Groups["ns"].Value.StartsWith(p + ".", StringComparison.Ordinal)).MaxBy(p => p.Length)
                    : null;
                if (owner is not null && forbidden.Contains(owner))
                    offending.Add($"{Path.GetRelativePath(Repository.Root, file)}: {line.Trim()}");
            }
        Assert.True(offending.Count == 0, $"{project} uses namespaces of projects it may not reference:\n" + string.Join("\n", offending));
    }
}
