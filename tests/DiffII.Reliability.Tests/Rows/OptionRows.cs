using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using DiffII.Augmentation;
using DiffII.Cli;
using DiffII.Diffusion.Pipelines;
using DiffII.Reliability.Tests.Fixtures;
using DiffII.Reliability.Tests.Matrix;

namespace DiffII.Reliability.Tests.Rows;

/// <summary>
/// Options: numbers read the same in every locale, every numeric option bounded and finite, and every check that
/// the options, the model and the folders allow made before any work, leaving nothing behind when it refuses.
/// </summary>
public static partial class OptionRows
{
    static readonly string[] Cultures = ["de-DE", "tr-TR", "fr-FR"];

    public static IEnumerable<MatrixRow> All =>
    [
        MatrixRow.Sync("options.numeric-sweep.cli", Area.Options, Layer.Cli,
            "every numeric option of every command given NaN, ±Infinity, 0, a negative, a huge value, a decimal comma (1,5) or a fraction, under de_DE, tr_TR and fr_FR",
            "each is read the invariant way (1.5 is 1.5) or refused at parsing with a message naming the option and its range; every numeric option has a range", _ => NumericSweep()),
        new("options.locale-process.cli", Area.Options, Layer.Cli,
            "a real diffii process under LC_ALL=de_DE.UTF-8 with --expansion 1.5",
            "1.5 synthetic images per real one (not 15); the saved settings and the progress print 1.5-style numbers", LocaleProcess),
        new("options.locale-output.cli", Area.Options, Layer.Cli,
            "a run in-process under fr_FR (decimal comma) with --expansion 1.5",
            "the same plan as under the invariant culture; losses and settings print decimal points; the caller's culture is restored", LocaleInProcess),
        MatrixRow.Sync("options.limits.library", Area.Options, Layer.Library,
            "library options out of range: NaN or ±Infinity guidance, split or expansion; 0 or negative steps, ranks, batches; 5000 sampling or inversion steps on a 1000-timestep model",
            "refused by the augmenter's constructor, before the work folder is made, naming each option (property and CLI flag)", OptionLimitsLibrary),
        MatrixRow.Sync("options.plan-size.library", Area.Options, Layer.Library,
            "a budget that plans over a million synthetic images (a target count of 1 000 000 for two classes)",
            "refused before any image is decoded or planned, with the planned count and the limit", PlanSizeLibrary),
        MatrixRow.Sync("options.fp16-cpu.library", Area.Options, Layer.Library, "float16 weights on the CPU",
            "refused up front (float16 learns NaN losses on the CPU); nothing is written", Fp16Library),
        new("options.fp16-cpu.cli", Area.Options, Layer.Cli, "float16 weights on the CPU",
            "refused up front (float16 learns NaN losses on the CPU); nothing is written", Fp16Cli),
        new("options.refusal-leaves-nothing.cli", Area.Options, Layer.Cli,
            "a run refused after it took the work folder's lock (missing images, a work folder made for nothing yet)",
            "no .lock files are left, and a folder the run created is removed", RefusalLeavesNothing),
        new("options.json-usage-error.cli", Area.Options, Layer.Cli, "--json with a usage error (NaN, an unknown option)",
            "one JSON object on stdout (status usage-error, the errors), the messages on stderr, exit 2", JsonUsageError),
        MatrixRow.Sync("options.example-vocabulary.cli", Area.Options, Layer.Cli,
            "the ML.NET example's options (examples/ImageFolderAugmentation)",
            "each is an option of diffii experiment, with the same name and default", ExampleVocabulary),
    ];

    // ---- the sweep over every numeric option of every command ----

    static IEnumerable<(Command Command, Option Option)> NumericOptions(Command root)
    {
        foreach (var command in root.Subcommands)
            foreach (var option in command.Options.Concat(root.Options.Where(o => o.Recursive)))
                if (option is Option<int> or Option<int?> or Option<long> or Option<long?> or Option<double> or Option<double?>)
                    yield return (command, option);
    }

    static void NumericSweep()
    {
        var root = CliApp.CommandTree();
        var pairs = NumericOptions(root).ToList();
        Assert.True(pairs.Count >= 40, $"only {pairs.Count} numeric options found");
        var before = CultureInfo.CurrentCulture;
        int checkedCases = 0;
        try
        {
            foreach (string culture in Cultures)
            {
                CultureInfo.CurrentCulture = new CultureInfo(culture);
                foreach (var (command, option) in pairs)
                {
                    var range = DiffII.Cli.NumericOptions.RangeOf(option);
                    Assert.True(range is not null, $"{command.Name} {option.Name} has no range in NumericOptions.Ranges");
                    bool isLong = option is Option<long> or Option<long?>;
                    bool whole = isLong || option is Option<int> or Option<int?>;
                    var cases = new List<(string Text, double? Accepted)>
                    {
                        ("NaN", null), ("Infinity", null), ("-Infinity", null), ("1,5", null), ("1.000,5", null),
                        ("0", range!.Contains(0) ? 0 : null), ("-1", range.Contains(-1) ? -1 : null),
                        ("99999999999", isLong ? 99999999999 : null), ("1e12", null),
                        ("1.5", whole ? null : range.Contains(1.5) ? 1.5 : null),
                        ("0.25", whole ? null : range.Contains(0.25) ? 0.25 : null),
                    };
                    foreach (var (text, accepted) in cases)
                    {
                        // An unknown token keeps every command from running, whatever the options: this sweep only parses.
                        var parse = root.Parse([command.Name, option.Name, text, "--no-such-option"]);
                        var mine = parse.Errors.Where(e => e.Message.Contains(option.Name, StringComparison.Ordinal)
                                                         && !e.Message.Contains("--no-such-option", StringComparison.Ordinal)).ToList();
                        string where = $"{culture}: diffii {command.Name} {option.Name} {text}";
                        if (accepted is null)
                        {
                            Assert.True(mine.Count > 0, $"{where} was accepted");
                            Assert.Contains(text, mine[0].Message);
                        }
                        else
                        {
                            Assert.True(mine.Count == 0, $"{where} was refused: {string.Join(" | ", mine.Select(e => e.Message))}");
                            Assert.Equal(accepted.Value, Value(parse, option), 12);
                        }
                        checkedCases++;
                    }
                }
            }
        }
        finally { CultureInfo.CurrentCulture = before; }
        Assert.True(checkedCases > 1000);
    }

    static double Value(ParseResult parse, Option option) => option switch
    {
        Option<int> o => parse.GetValue(o),
        Option<int?> o => parse.GetValue(o)!.Value,
        Option<long> o => parse.GetValue(o),
        Option<long?> o => parse.GetValue(o)!.Value,
        Option<double> o => parse.GetValue(o),
        Option<double?> o => parse.GetValue(o)!.Value,
        _ => throw new InvalidOperationException(option.Name),
    };

    // ---- locales ----

    static Task LocaleProcess(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string work = s.Path("work");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "DiffII.Cli.dll"), "augment" }.Concat(Tiny.CliArgs(work, images, "--expansion", "1.5")))
            start.ArgumentList.Add(a);
        start.Environment["LC_ALL"] = "de_DE.UTF-8";
        start.Environment["LANG"] = "de_DE.UTF-8";
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3))) { process.Kill(entireProcessTree: true); Assert.Fail("diffii under de_DE did not finish in 3 minutes"); }
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{stdout.Result}\n{stderr.Result}");
        Assert.Equal(6, Outputs.ManifestLines(work)); // 1.5 × 2 real images per class, two classes
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(work, RunSettings.FileName)));
        Assert.Equal(1.5, settings.RootElement.GetProperty("expansion").GetDouble());
        Assert.Matches(@"loss \d+\.\d+", stderr.Result);
        Assert.DoesNotMatch(@"loss \d+,\d+", stderr.Result);
        return Task.CompletedTask;
    }

    static async Task LocaleInProcess(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        var before = (CultureInfo.CurrentCulture, CultureInfo.CurrentUICulture);
        CliResult run;
        CultureInfo.CurrentCulture = CultureInfo.CurrentUICulture = new CultureInfo("fr-FR");
        try { run = await CliRunner.Run(["augment", .. Tiny.CliArgs(s.Path("work"), images, "--expansion", "1.5", "--verbose")]); }
        finally { (CultureInfo.CurrentCulture, CultureInfo.CurrentUICulture) = before; }
        run.AssertOk();
        Assert.Contains("6 synthetic images", run.Stdout + run.Stderr);
        Assert.Matches(@"loss \d+\.\d+", run.Stderr);
        Assert.DoesNotMatch(@"loss \d+,\d+", run.Stderr);
        Assert.Contains("\"expansion\": 1.5", File.ReadAllText(s.Path("work", RunSettings.FileName)));
        Assert.Equal("fr-FR", new CultureInfo("fr-FR").Name);
    }

    // ---- the library's limits ----

    static void OptionLimitsLibrary(Scratch s)
    {
        var good = Tiny.Options();
        Assert.Empty(OptionLimits.Problems(good, 1000));
        (AugmentationOptions Options, string Names)[] bad =
        [
            (good with { Generation = good.Generation with { GuidanceScale = double.NaN } }, "Generation.GuidanceScale, --guidance"),
            (good with { Generation = good.Generation with { GuidanceScale = double.PositiveInfinity } }, "Generation.GuidanceScale, --guidance"),
            (good with { SplitRatio = double.NaN }, "SplitRatio, --split"),
            (good with { SplitRatio = -0.5 }, "SplitRatio, --split"),
            (good with { Budget = new SampleBudget.Expansion(double.NegativeInfinity) }, "--expansion"),
            (good with { Budget = new SampleBudget.Expansion(0) }, "--expansion"),
            (good with { Budget = new SampleBudget.Expansion(1e9) }, "--expansion"),
            (good with { Budget = new SampleBudget.TargetCount(-3) }, "--target-count"),
            (good with { Generation = good.Generation with { Steps = 5000 } }, "--sample-steps"),
            (good with { Generation = good.Generation with { Steps = 0 } }, "--sample-steps"),
            (good with { Inversion = good.Inversion with { Steps = 5000 } }, "--inversion-steps"),
            (good with { Concepts = good.Concepts! with { Steps = -1 } }, "--learn-steps"),
            (good with { Concepts = good.Concepts! with { LoraRank = 0 } }, "--lora-rank"),
            (good with { Concepts = good.Concepts! with { BatchSize = 0 } }, "--batch"),
            (good with { Concepts = good.Concepts! with { TokenLearningRate = double.NaN } }, "Concepts.TokenLearningRate"),
            (good with { Generation = good.Generation with { BatchSize = 0 } }, "Generation.BatchSize"),
            (good with { Concepts = good.Concepts! with { Metaclass = "cat" } }, "Concepts.Metaclass ('cat') differs from the run's Metaclass ('bird')"),
        ];
        foreach (var (options, names) in bad)
            Assert.Contains(OptionLimits.Problems(options, 1000), p => p.Contains(names, StringComparison.Ordinal));

        using var sd = Tiny.Load();
        Assert.Equal(1000, sd.SchedulerConfig.NumTrainTimesteps);
        var before = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = new CultureInfo("de-DE");
        try
        {
            foreach (var (options, names) in bad)
            {
                string work = s.Path("work-" + Guid.NewGuid().ToString("N"));
                var e = Assert.Throws<ArgumentOutOfRangeException>(() => new DiffIIAugmenter(sd, options, work));
                Assert.Contains(names, e.Message);
                Assert.False(Directory.Exists(work), $"{work} was created by a refused run");
            }
            var decimals = Assert.Throws<ArgumentOutOfRangeException>(() => new DiffIIAugmenter(sd, good with { Budget = new SampleBudget.Expansion(1500.5) }, s.Path("w")));
            // A split ratio that needs suffixes, and none: refused by Run before concept learning (learn and invert alone need none).
            string noSuffixWork = s.Path("w-no-suffix");
            using (var augmenter = new DiffIIAugmenter(sd, good with { Suffixes = [] }, noSuffixWork))
                Assert.Contains("needs at least one prompt suffix", Assert.Throws<ArgumentException>(() => augmenter.Run(Tiny.Images(("a", 2), ("b", 2)))).Message);
            Assert.False(Directory.Exists(Path.Combine(noSuffixWork, "concepts")));
            Assert.Contains("got 1500.5", decimals.Message); // not 1500,5 under de_DE
        }
        finally { CultureInfo.CurrentCulture = before; }
    }

    static void PlanSizeLibrary(Scratch s)
    {
        using var sd = Tiny.Load();
        string work = s.Path("work");
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options() with { Budget = new SampleBudget.TargetCount(1_000_000) }, work);
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => augmenter.Fit(Tiny.Images(("a", 2), ("b", 2))));
        Assert.Contains("1,999,996 synthetic images", e.Message);
        Assert.Contains("1,000,000", e.Message);
        Assert.False(File.Exists(Path.Combine(work, "fit.json")), "the refused run recorded a fingerprint");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the refusal took {clock.Elapsed}");
    }

    // ---- float16 on the CPU ----

    static void Fp16Library(Scratch s)
    {
        using var sd = StableDiffusion.Load(Tiny.ModelPath, new StableDiffusionLoadOptions { DType = TorchSharp.torch.ScalarType.Float16 });
        string work = s.Path("work");
        var e = Assert.Throws<ArgumentException>(() => new DiffIIAugmenter(sd, Tiny.Options(), work));
        Assert.Contains("float16", e.Message);
        Assert.Contains("CPU", e.Message);
        Assert.False(Directory.Exists(work));
    }

    static async Task Fp16Cli(Scratch s)
    {
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string work = s.Path("work");
        var line = (await CliRunner.Run(["augment", .. Tiny.CliArgs(work, images, "--dtype", "float16")])).OneErrorLine();
        Assert.Contains("--dtype float16", line);
        Assert.Contains("NaN", line);
        Assert.False(Directory.Exists(work));
    }

    // ---- refusals leave nothing ----

    static async Task RefusalLeavesNothing(Scratch s)
    {
        string fresh = s.Path("fresh-work");
        var line = (await CliRunner.Run(["augment", .. Tiny.CliArgs(fresh, s.Path("no-images"))])).OneErrorLine();
        Assert.Contains("does not exist", line);
        Assert.False(Directory.Exists(fresh), "the refused run left the work folder it made");

        string existing = s.Path("existing-work");
        Directory.CreateDirectory(existing);
        string empty = s.Path("empty-images");
        Directory.CreateDirectory(Path.Combine(empty, "a"));
        (await CliRunner.Run(["augment", .. Tiny.CliArgs(existing, empty)])).OneErrorLine();
        Assert.True(Directory.Exists(existing), "a folder the user made was removed");
        Assert.Empty(Directory.GetFileSystemEntries(existing));
    }

    static async Task JsonUsageError(Scratch s)
    {
        foreach (string[] extra in new[] { new[] { "--expansion", "NaN" }, new[] { "--no-such-option" } })
        {
            var run = await CliRunner.Run(["augment", "--json", "--work", s.Path("w"), .. extra]);
            Assert.Equal(CliApp.Usage, run.Code);
            using var json = JsonDocument.Parse(run.Stdout);
            Assert.Equal("usage-error", json.RootElement.GetProperty("status").GetString());
            Assert.Equal("augment", json.RootElement.GetProperty("command").GetString());
            var errors = json.RootElement.GetProperty("errors").EnumerateArray().Select(e => e.GetString()!).ToList();
            Assert.Contains(errors, e => e.Contains(extra[0], StringComparison.Ordinal));
            Assert.Contains(extra[0], run.Stderr);
        }
    }

    // ---- the example speaks the CLI's language ----

    static void ExampleVocabulary(Scratch _)
    {
        string program = File.ReadAllText(Path.Combine(RepoRoot(), "examples", "ImageFolderAugmentation", "Program.cs"));
        var known = KnownArray().Match(program);
        Assert.True(known.Success, "the example's list of known options was not found");
        var names = Regex.Matches(known.Groups[1].Value, "\"([a-z-]+)\"").Select(m => "--" + m.Groups[1].Value).ToList();
        Assert.True(names.Count >= 15, string.Join(", ", names));
        var root = CliApp.CommandTree();
        var experiment = root.Subcommands.Single(c => c.Name == "experiment");
        var cliNames = experiment.Options.Concat(root.Options).SelectMany(o => o.Aliases.Prepend(o.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var name in names) Assert.True(cliNames.Contains(name), $"the example's {name} is not an option of diffii experiment");
        // The same defaults where both say one.
        foreach (Match m in Regex.Matches(program, @"--([a-z-]+) +[A-Z]+ +[^\n]*\(default: ([0-9.]+)"))
        {
            var option = experiment.Options.Concat(root.Options).First(o => o.Aliases.Prepend(o.Name).Contains("--" + m.Groups[1].Value));
            string? cliDefault = Regex.Match(option.Description ?? "", @"default:? ([0-9.]+)").Groups[1].Value is { Length: > 0 } d ? d
                : option switch { Option<double> o => o.DefaultValueFactory?.Invoke(null!).ToString(CultureInfo.InvariantCulture), _ => null };
            if (cliDefault is null) continue;
            Assert.True(cliDefault.TrimEnd('.') == m.Groups[2].Value.TrimEnd('.'), $"--{m.Groups[1].Value}: the example's default is {m.Groups[2].Value}, the CLI's {cliDefault}");
        }
    }

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DiffII.MLNet.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("The repository root (DiffII.MLNet.sln) was not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"string\[\] known = \[(.*?)\];", RegexOptions.Singleline)]
    private static partial Regex KnownArray();
}
