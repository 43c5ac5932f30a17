namespace DiffII.Cli.Tests;

/// <summary>The tiny-experiment command's own checks (the experiment itself is tested in DiffII.TinyWorld.Tests).</summary>
public sealed class TinyExperimentCommandTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-cli-tiny-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    static string ErrorLine(CliResult result)
    {
        Assert.True(result.Code == 1, result.ToString());
        Assert.DoesNotContain("   at ", result.Stderr);
        return Assert.Single(result.ErrorLines, l => l.StartsWith("diffii tiny-experiment", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--shots", "5,x", "--shots: 'x' is not a positive whole number.")]
    [InlineData("--shots", "0", "--shots: '0' is not a positive whole number.")]
    [InlineData("--shots", "5,99999999", "--shots: 99999999 is more than 1000 pictures per class")]
    [InlineData("--shots", "1e3", "--shots: '1e3' is not a positive whole number.")]
    [InlineData("--seeds", "1,99999999999999999999", "--seeds: '99999999999999999999' is not a whole number.")]
    [InlineData("--seeds", "1,two", "--seeds: 'two' is not a whole number.")]
    [InlineData("--methods", "original,diff-i", "--methods: 'diff-i' is not 'original' or a strategy")]
    public async Task BadLists_AreOneLineErrorsNamingTheValue(string option, string value, string expected)
    {
        var line = ErrorLine(await Cli.Run(["tiny-experiment", "--work", Path.Combine(_root, "w"), "--model", SharedData.TinyA(), option, value]));
        Assert.Contains(expected, line);
        Assert.False(Directory.Exists(Path.Combine(_root, "w")), "nothing is written before the options are checked");
    }

    [Fact]
    public async Task AMissingModel_IsNamed()
    {
        string missing = Path.Combine(_root, "no-model");
        var line = ErrorLine(await Cli.Run(["tiny-experiment", "--work", Path.Combine(_root, "w"), "--model", missing]));
        Assert.Contains(missing, line);
    }

    [Fact]
    public async Task AnUnknownPreset_IsAUsageError()
    {
        var result = await Cli.Run(["tiny-experiment", "--preset", "huge"]);
        Assert.Equal(2, result.Code);
        Assert.Contains("huge", result.Stderr);
    }
}
