using System.Text.Json;

namespace DiffII.Cli.Tests;

/// <summary>Every error a user can act on is one line on stderr naming the thing, with a non-zero exit code and no stack trace.</summary>
public sealed class ErrorTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-cli-err-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    string Work => Path.Combine(_root, "work");

    static string OneLine(CliResult result, int code = 1)
    {
        Assert.True(result.Code == code, result.ToString());
        Assert.DoesNotContain("   at ", result.Stderr);
        // Notes ("4 images in 2 classes …") may precede it; the error itself is one line.
        return Assert.Single(result.ErrorLines, l => l.StartsWith("diffii", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AMissingModel_IsNamed_WithWhatToPass()
    {
        string images = Cli.Images(Path.Combine(_root, "images"), ("a", 2), ("b", 2));
        string missing = Path.Combine(_root, "no-such-model");
        var line = OneLine(await Cli.Run(["learn", "--work", Work, "--images", images, "--model", missing]));
        Assert.Contains(missing, line);
        Assert.Contains("pass --model", line);
    }

    // A class without images, an unreadable image and a work folder in use are rows of the reliability matrix
    // (tests/DiffII.Reliability.Tests: dataset.empty-class.cli, image.*.cli, fault.two-runs.cli).

    [Theory]
    [InlineData("12", "--latent-size must be 8 or 16; got 12.")]
    [InlineData("abc", "--latent-size takes a number (8 or 16); got 'abc'.")]
    public async Task ALatentSizeOtherThan8Or16_IsRefusedBeforeAnyWork(string size, string message)
    {
        var line = OneLine(await Cli.Run(["pretrain-tiny", "--work", Work, "--out", Path.Combine(_root, "out"), "--latent-size", size]), code: 2);   // a usage error
        Assert.Contains(message, line);
        Assert.False(Directory.Exists(Work));
    }

    [Fact]
    public async Task AFolderWithoutImages_IsNamed()
    {
        string empty = Path.Combine(_root, "empty");
        Directory.CreateDirectory(empty);
        var line = OneLine(await Cli.Run(["augment", "--work", Work, "--images", empty, "--model", SharedData.TinyA()]));
        Assert.Contains(empty, line);
        Assert.Contains("has no images", line);
    }

    [Fact]
    public async Task ACudaRequestWithoutCuda_SaysSo()
    {
        if (TorchSharp.torch.cuda.is_available()) return; // a GPU machine serves the request
        string images = Cli.Images(Path.Combine(_root, "images"), ("a", 2), ("b", 2));
        var line = OneLine(await Cli.Run(["learn", "--work", Work, "--images", images, "--model", SharedData.TinyA(), "--device", "cuda"]));
        Assert.Contains("--device cuda", line);
        Assert.Contains("CUDA is not available", line);
        Assert.Contains("--device cpu", line);
    }

    [Fact]
    public async Task AWorkFolderMadeForOtherImages_IsRefused_ByTheToolAndByTheMethod()
    {
        string first = Cli.Images(Path.Combine(_root, "first"), ("a", 2), ("b", 2));
        string second = Cli.Images(Path.Combine(_root, "second"), ("a", 3), ("b", 2));
        var made = await Cli.Run(["augment", .. Cli.Tiny(Work, first, "--strategy", "real-guidance", "--expansion", "1", "--quiet")]);
        Assert.True(made.Code == 0, made.ToString());

        var line = OneLine(await Cli.Run(["augment", "--work", Work, "--images", second]));
        Assert.Contains("different images", line);
        Assert.Contains(Work, line);

        // Without the tool's settings file, the method's own fingerprint check (InvalidOperationException) still refuses.
        File.Delete(Path.Combine(Work, RunSettings.FileName));
        line = OneLine(await Cli.Run(["augment", .. Cli.Tiny(Work, second, "--strategy", "real-guidance", "--expansion", "1")]));
        Assert.Contains("different images", line);
    }

    [Fact]
    public async Task Verbose_AddsTheStackTrace_AndJsonStillPrintsAResultObject()
    {
        string missing = Path.Combine(_root, "nowhere");
        var verbose = await Cli.Run(["learn", "--work", Work, "--images", missing, "--verbose"]);
        Assert.Equal(1, verbose.Code);
        Assert.Contains("does not exist", verbose.ErrorLines[0]);
        Assert.Contains("   at ", verbose.Stderr);

        var json = await Cli.Run(["learn", "--work", Work, "--images", missing, "--json"]);
        Assert.Equal(1, json.Code);
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Equal("error", doc.RootElement.GetProperty("status").GetString());
        Assert.Contains("does not exist", doc.RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task UsageErrors_ExitWithTwo_AndNameTheProblem()
    {
        var strategy = await Cli.Run(["augment", "--work", Work, "--strategy", "magic"]);
        Assert.Equal(2, strategy.Code);
        Assert.Contains("Unknown strategy 'magic'", strategy.Stderr);
        Assert.Contains("diff-ii", strategy.Stderr);

        var noWork = await Cli.Run(["learn"]);
        Assert.Equal(2, noWork.Code);
        Assert.Contains("--work", noWork.Stderr);

        var both = await Cli.Run(["generate", "--work", Work, "--expansion", "2", "--target-count", "9"]);
        Assert.Equal(2, both.Code);
        Assert.Contains("not both", both.Stderr);
    }

    [Fact]
    public void TheDefaultModel_IsFoundAboveTheToolFolder_OrTheErrorSaysPassModel()
    {
        string tree = Path.Combine(_root, "repo");
        string tool = Path.Combine(tree, "bin", "tool");
        Directory.CreateDirectory(tool);
        var e = Assert.Throws<CliException>(() => ModelLocator.Resolve(null, null, tool));
        Assert.Contains("pass --model", e.Message);

        string embedded = Path.Combine(tree, "models", "tiny-sd");
        Directory.CreateDirectory(embedded);
        File.WriteAllText(Path.Combine(embedded, "model_index.json"), "{}");
        Assert.Equal(embedded, ModelLocator.Resolve(null, null, tool));
        Assert.Equal(SharedData.TinyA(), ModelLocator.Resolve(null, SharedData.TinyA(), tool));
        Assert.Contains("DIFFII_MODEL", Assert.Throws<CliException>(() => ModelLocator.Resolve(null, Path.Combine(_root, "gone"), tool)).Message);
    }
}
