using System.Xml.Linq;

namespace DiffII.Architecture.Tests;

/// <summary>A project of the repository as its project file declares it.</summary>
sealed record ProjectFile(string Name, string Folder, IReadOnlyList<string> ProjectReferences, IReadOnlyList<string> PackageReferences)
{
    /// <summary>The C# sources of the project (build output excluded).</summary>
    public IEnumerable<string> Sources() =>
        Directory.EnumerateFiles(Folder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"));
}

/// <summary>Reads the projects under src/ and bench/ from the checkout the tests run in.</summary>
static class Repository
{
    static readonly Lazy<string> RootPath = new(FindRoot);
    static readonly Lazy<IReadOnlyDictionary<string, ProjectFile>> All = new(Load);

    public static string Root => RootPath.Value;

    /// <summary>Every project under src/ and bench/, by project name.</summary>
    public static IReadOnlyDictionary<string, ProjectFile> Projects => All.Value;

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DiffII.MLNet.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("DiffII.MLNet.sln was not found above " + AppContext.BaseDirectory + ".");
    }

    static IReadOnlyDictionary<string, ProjectFile> Load()
    {
        var projects = new Dictionary<string, ProjectFile>();
        foreach (var top in new[] { "src", "bench" })
            foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, top), "*.csproj", SearchOption.AllDirectories))
            {
                var xml = XDocument.Load(file);
                string name = Path.GetFileNameWithoutExtension(file);
                var projectRefs = xml.Descendants("ProjectReference")
                    .Select(e => Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value.Replace('\\', '/')))
                    .ToList();
                var packageRefs = xml.Descendants("PackageReference").Select(e => e.Attribute("Include")!.Value).ToList();
                projects.Add(name, new ProjectFile(name, Path.GetDirectoryName(file)!, projectRefs, packageRefs));
            }
        return projects;
    }

    /// <summary>The project and everything it references, directly or not.</summary>
    public static IReadOnlyList<ProjectFile> Closure(string name)
    {
        var seen = new List<ProjectFile>();
        var stack = new Stack<string>([name]);
        while (stack.Count > 0)
        {
            string next = stack.Pop();
            if (seen.Any(p => p.Name == next)) continue;
            var project = Projects.TryGetValue(next, out var p) ? p : throw new InvalidOperationException($"'{name}' references '{next}', which is not a project under src/ or bench/.");
            seen.Add(project);
            foreach (var r in project.ProjectReferences) stack.Push(r);
        }
        return seen;
    }
}
