namespace DiffII.Cli.Tests;

public class HelpTests
{
    [Theory]
    [InlineData("learn", "--steps", "--lora-rank")]
    [InlineData("invert", "--inversion-steps", "--learn-steps")]
    [InlineData("generate", "--suffix-preset", "--caption-endpoint")]
    [InlineData("augment", "--sample-steps", "--target-count")]
    [InlineData("experiment", "--test-fraction", "--baselines")]
    [InlineData("tiny-experiment", "--preset", "--methods")]
    [InlineData("doctor", "--device", "--json")]
    [InlineData("pretrain-tiny", "--vae-steps", "--fashion-mnist")]
    public async Task EveryCommand_HasHelp_ListingItsOptions(string command, string option, string another)
    {
        var help = await Cli.Run([command, "--help"]);
        Assert.True(help.Code == 0, help.ToString());
        Assert.Contains("Usage:", help.Stdout);
        Assert.Contains($"diffii {command} [options]", help.Stdout);
        Assert.Contains(option, help.Stdout);
        Assert.Contains(another, help.Stdout);
        Assert.Contains("--quiet", help.Stdout); // global options show everywhere
    }

    [Fact]
    public async Task TheRootHelp_ListsEveryCommand()
    {
        var help = await Cli.Run(["--help"]);
        Assert.Equal(0, help.Code);
        foreach (var command in new[] { "learn", "invert", "generate", "augment", "experiment", "tiny-experiment", "doctor", "pretrain-tiny" })
            Assert.Contains(command, help.Stdout);
        var none = await Cli.Run([]);
        Assert.Equal(2, none.Code);
        Assert.Contains("a command is needed", none.Stderr);
        var version = await Cli.Run(["--version"]);
        Assert.Equal(0, version.Code);
        Assert.StartsWith("0.", version.Stdout);
    }
}
