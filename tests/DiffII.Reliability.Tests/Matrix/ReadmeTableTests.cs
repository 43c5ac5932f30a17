namespace DiffII.Reliability.Tests.Matrix;

/// <summary>The README's "what happens when" table is the matrix, rendered; it must not drift from the rows.</summary>
public sealed class ReadmeTableTests
{
    const string UpdateVariable = "DIFFII_UPDATE_README";

    static string ReadmePath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DiffII.MLNet.sln"))) return Path.Combine(dir.FullName, "README.md");
        throw new FileNotFoundException("README.md was not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void TheReadmeTable_IsTheMatrix()
    {
        string path = ReadmePath();
        string readme = File.ReadAllText(path);
        int start = readme.IndexOf(ReliabilityMatrix.TableStart, StringComparison.Ordinal);
        int end = readme.IndexOf(ReliabilityMatrix.TableEnd, StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, $"{path} lacks the markers {ReliabilityMatrix.TableStart} … {ReliabilityMatrix.TableEnd}.");
        string current = readme[(start + ReliabilityMatrix.TableStart.Length)..end].Trim('\n');
        string expected = ReliabilityMatrix.Table().TrimEnd('\n');
        if (current == expected) return;
        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            File.WriteAllText(path, readme[..(start + ReliabilityMatrix.TableStart.Length)] + "\n" + expected + "\n" + readme[end..]);
            return;
        }
        Assert.Fail($"The 'what happens when' table in {path} differs from the reliability matrix. Regenerate it with:\n" +
                    $"  {UpdateVariable}=1 dotnet test tests/DiffII.Reliability.Tests -c Release --filter FullyQualifiedName~ReadmeTableTests\n" +
                    "and commit README.md.");
    }
}
