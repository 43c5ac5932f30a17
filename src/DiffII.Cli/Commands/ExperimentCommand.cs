using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DiffII.Augmentation;
using DiffII.Diffusion.Runtime;
using DiffII.Experiments.Classification;
using DiffII.MLNet.Data;
using DiffII.Reporting;
using DiffII.Storage;
using Microsoft.ML;

namespace DiffII.Cli.Commands;

/// <summary>
/// The Model Builder-style comparison: split the images into train and test (stratified, seeded), augment the train
/// split (and optionally run baselines, each in its own sub-folder), featurise with ResNet18, train each trainer on
/// the originals and on originals + synthetic images, print the table, save the best model and write a report.
/// </summary>
public static class ExperimentCommand
{
    /// <summary>One row of the experiment table: a trainer on one training set (originals, or a method's augmented set).</summary>
    public sealed record ExperimentRow(string Trainer, string Method, string Mixing, double MicroAccuracy, double MacroAccuracy, double LogLoss,
        long TrainingRows, double TrainingSeconds, IReadOnlyList<ClassMetrics> PerClass);

    /// <summary>A row of the scoring input (and of the training data before augmentation).</summary>
    public sealed class ImageRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public static Command Create(CliApp app)
    {
        var m = new MethodOptions(OptionGroups.All);
        var testFraction = new Option<double>("--test-fraction") { Description = "Share of each class held out for testing (stratified, seeded).", DefaultValueFactory = _ => 0.2, HelpName = "F" };
        var trainers = new Option<string>("--trainers") { Description = "Comma-separated trainers: lbfgs, sdca, lightgbm, finetune (ResNet-18 fine-tuned end to end, the paper's protocol; slow on a CPU).", DefaultValueFactory = _ => "lbfgs,sdca,lightgbm", HelpName = "LIST" };
        var mixing = new Option<string>("--mixing") { Description = "How synthetic rows join the originals: concat, replacement or replacement=P (comma-separated for several).", DefaultValueFactory = _ => "concat", HelpName = "MODE" };
        var baselines = new Option<string?>("--baselines") { Description = "Comma-separated extra strategies to compare (e.g. real-guidance,da-fusion), each run in its own sub-folder.", HelpName = "LIST" };
        var output = new Option<string?>("--out", "-o") { Description = "Where the best scoring model is saved (default: WORK/model.zip).", HelpName = "FILE" };
        trainers.Validators.Add(r => { foreach (var t in List(r.GetValueOrDefault<string>())) if (TrainerFor(t, 0) is null) r.AddError($"Unknown trainer '{t}'; use lbfgs, sdca, lightgbm or finetune."); });
        mixing.Validators.Add(r => { foreach (var t in List(r.GetValueOrDefault<string>())) if (MixingFor(t) is null) r.AddError($"Unknown mixing '{t}'; use concat, replacement or replacement=P with P in [0, 1]."); });
        baselines.Validators.Add(r => { foreach (var b in List(r.GetValueOrDefault<string?>())) MethodOptions.CheckStrategy(r, b); });

        var command = new Command("experiment", "Compare classifiers trained with and without augmentation (ResNet18 features), save the best model and a report.");
        m.AddTo(command);
        foreach (var o in new Option[] { testFraction, trainers, mixing, baselines, output }) command.Options.Add(o);
        command.SetAction((parse, cancel) => app.Guard(parse, "experiment", cli => RunAsync(cli, parse, app.Global, m,
            new Settings(parse.GetValue(testFraction), List(parse.GetValue(trainers)), List(parse.GetValue(mixing)), List(parse.GetValue(baselines)), parse.GetValue(output)), cancel), cancel));
        return command;
    }

    sealed record Settings(double TestFraction, IReadOnlyList<string> Trainers, IReadOnlyList<string> Mixings, IReadOnlyList<string> Baselines, string? Output);

    static IReadOnlyList<string> List(string? text) =>
        (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.OrdinalIgnoreCase).ToList();

    static ClassifierTrainer? TrainerFor(string name, int seed) => name.ToLowerInvariant() switch
    {
        "lbfgs" or "lbfgsmaximumentropy" => ClassifierTrainer.LbfgsMaximumEntropy(),
        "sdca" or "sdcamaximumentropy" => ClassifierTrainer.SdcaMaximumEntropy(),
        "lightgbm" => ClassifierTrainer.LightGbm(minimumExamplesPerLeaf: 2, seed: seed),
        "finetune" or "resnet18finetune" => ClassifierTrainer.ResNet18FineTune(seed, imageSize: 112),
        _ => null,
    };

    static AugmentationMixing? MixingFor(string text)
    {
        if (text.Equals("concat", StringComparison.OrdinalIgnoreCase)) return AugmentationMixing.Concat;
        if (text.Equals("replacement", StringComparison.OrdinalIgnoreCase)) return AugmentationMixing.Replacement();
        if (text.StartsWith("replacement=", StringComparison.OrdinalIgnoreCase)
            && double.TryParse(text["replacement=".Length..], NumberStyles.Float, CultureInfo.InvariantCulture, out double p) && p is >= 0 and <= 1)
            return AugmentationMixing.Replacement(p);
        return null;
    }

    /// <summary>--out names the model file: an existing folder there (or a parent that is a file) would fail only after augmenting and training.</summary>
    static void CheckModelOutput(string? output, string work)
    {
        if (output is null) return;
        string path = Path.GetFullPath(output);
        var kind = FileKind.Of(path);
        if (kind == FileKindValue.Directory)
            throw new CliException($"--out {path} is an existing folder; --out names the model file to write, e.g. {Path.Combine(path, "model.zip")}.");
        if (kind is not (FileKindValue.Missing or FileKindValue.Regular))
            throw new CliException($"--out {path} is {FileKind.Describe(kind)}; --out names the model file to write (a .zip).");
        UpFrontChecks.WorkFolder(Path.GetDirectoryName(path)!, "--out's folder");
    }

    static async Task<int> RunAsync(CliOutput cli, ParseResult parse, GlobalOptions global, MethodOptions m, Settings settings, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        using var start = RunStart.Open(parse, global, m, work => CheckModelOutput(settings.Output, work));
        var (work, device, dtype, saved, merged) = (start.Work, start.Device, start.DType, start.Saved, start.Merged);
        var all = RunPreparation.LoadImages(cli, merged, work, saved);
        merged = merged with { ImagesFingerprint = all.Fingerprint() };

        var (train, test) = Split(all, settings.TestFraction, merged.Seed ?? 0);
        if (test.Items.Count == 0)
            throw new CliException($"The test split is empty: no class has two or more images at --test-fraction {settings.TestFraction}; add images or raise --test-fraction.");
        cli.Note($"split: {train.Items.Count} train, {test.Items.Count} test images");

        var main = ResolvedRun.From(merged, work, train, RunPreparation.ResolveModel(merged));
        UpFrontChecks.AgainstModelAndImages(main);
        AtomicFile.WriteAllText(Path.Combine(work, "split.json"), JsonSerializer.Serialize(new { train = train.Items.Select(i => i.Id), test = test.Items.Select(i => i.Id) }, CliOutput.JsonOptions));
        var strategies = new[] { main.Strategy }.Concat(settings.Baselines.Select(StrategyInfo.Parse)).Distinct().ToList();
        var runs = strategies.Select(s => main.For(s, Path.Combine(work, "runs", s.Name()), train)).ToList();

        (IReadOnlyList<string> Suffixes, string Source)? suffixes = null;
        if (runs.FirstOrDefault(r => r.NeedsSuffixes) is { } needing)
            suffixes = await RunPreparation.ResolveSuffixesAsync(cli, parse, m, needing with { Work = work }, saved, cancel);
        foreach (var run in runs) RunPreparation.CheckGenerationUnchanged(saved, run, suffixes?.Suffixes);
        main.ToSettings(merged, suffixes?.Suffixes, suffixes?.Source).Save(work);

        var outcomes = new List<(ResolvedRun Run, GenerationOutcome Outcome)>();
        foreach (var run in runs)
        {
            cli.Note($"augmenting the train split with {run.Strategy.Name()} in {run.Work}");
            var outcome = MethodRun.Fit(cli, run, run.NeedsSuffixes ? suffixes!.Value.Suffixes : [], generate: true, device, dtype, cancel);
            foreach (var failure in outcome.Failures) cli.Warning($"{run.Strategy.Name()}: sample {failure.SampleId} was not written: {failure.Reason}");
            outcomes.Add((run, outcome));
        }
        cancel.ThrowIfCancellationRequested();

        int seed = (int)((merged.Seed ?? 0) & 0x7fffffff);
        var trainers = settings.Trainers.Select(t => TrainerFor(t, seed)!).ToList();
        var mixings = settings.Mixings.Select(t => MixingFor(t)!).ToList();
        var comparison = cli.Track(progress => Compare(outcomes, train, test, trainers, mixings, seed, progress, cancel));

        string modelPath = Path.GetFullPath(settings.Output ?? Path.Combine(work, "model.zip"));
        var best = comparison.Rows.OrderByDescending(r => r.MicroAccuracy).ThenBy(r => r.LogLoss).First();
        comparison.Save(best, modelPath);

        string reportFolder = Path.Combine(work, "report");
        var files = Report.Write(reportFolder, comparison.Rows, best, modelPath, all, train, test, outcomes, main, settings.TestFraction, suffixes?.Source);

        cli.Line(Report.Table(comparison.Rows).ToMarkdown());
        cli.Line($"best: {best.Trainer} on {Describe(best)} — micro accuracy {best.MicroAccuracy.ToString("0.0000", CultureInfo.InvariantCulture)}; saved {modelPath}");
        cli.Line($"report: {files[0]}");
        cli.Result(new
        {
            status = "ok",
            command = "experiment",
            work,
            model = main.ModelPath,
            train = train.Items.Count,
            test = test.Items.Count,
            methods = outcomes.Select(o => new { strategy = o.Run.Strategy.Name(), work = o.Run.Work, synthetic = o.Outcome.Images.Count }).ToList(),
            rows = comparison.Rows.Select(r => new
            {
                trainer = r.Trainer, method = r.Method, mixing = r.Mixing, microAccuracy = r.MicroAccuracy, macroAccuracy = r.MacroAccuracy,
                logLoss = r.LogLoss, trainingRows = r.TrainingRows, trainingSeconds = r.TrainingSeconds,
                perClass = r.PerClass.Select(c => new { className = c.ClassName, support = c.Support, accuracy = c.Accuracy }).ToList(),
            }).ToList(),
            best = new { trainer = best.Trainer, method = best.Method, mixing = best.Mixing, microAccuracy = best.MicroAccuracy },
            savedModel = modelPath,
            report = files[0],
            plots = files.Skip(1).ToList(),
            seconds = Math.Round(clock.Elapsed.TotalSeconds, 2),
        });
        return CliApp.Ok;
    }

    internal static string Describe(ExperimentRow row) => row.Method == ClassifierComparison.OriginalsMode ? "the originals" : $"{row.Method} ({row.Mixing})";

    /// <summary>Per class, a seeded shuffle; round(fraction × n) images to test, at least one when the class has two or more, never all.</summary>
    internal static (ImageSet Train, ImageSet Test) Split(ImageSet images, double fraction, long seed)
    {
        var testIds = new List<string>();
        for (int c = 0; c < images.Classes.Count; c++)
        {
            var ids = images.Items.Where(i => i.Label == images.Classes[c]).Select(i => i.Id).Order(StringComparer.Ordinal).ToArray();
            new Random(StableSeed.Of(seed, 0x5EED, c)).Shuffle(ids);
            int n = ids.Length;
            int take = n < 2 ? 0 : Math.Clamp((int)Math.Round(fraction * n, MidpointRounding.AwayFromZero), 1, n - 1);
            testIds.AddRange(ids.Take(take));
        }
        var test = testIds.ToHashSet(StringComparer.Ordinal);
        return (images.Subset(images.Items.Where(i => !test.Contains(i.Id)).Select(i => i.Id)), images.Subset(test));
    }

    /// <summary>The trained comparisons of every method, and how to save one of their models.</summary>
    sealed class Comparison(MLContext ml, DataViewSchema scoringSchema)
    {
        public List<ExperimentRow> Rows { get; } = [];
        public Dictionary<ExperimentRow, (TrainedClassifier Model, ITransformer Featurizer)> Models { get; } = [];

        public void Save(ExperimentRow row, string path)
        {
            var (model, featurizer) = Models[row];
            model.Save(ml, featurizer, scoringSchema, path);
        }

        public void Add(string method, ComparisonResult result, ITransformer featurizer, bool includeOriginals)
        {
            foreach (var r in result.Rows)
            {
                bool originals = r.Mode == ClassifierComparison.OriginalsMode;
                if (originals && !includeOriginals) continue;
                var row = new ExperimentRow(r.Trainer, originals ? ClassifierComparison.OriginalsMode : method, originals ? "-" : r.Mode,
                    r.MicroAccuracy, r.MacroAccuracy, r.LogLoss, r.TrainingRows, r.TrainingSeconds, r.PerClass);
                Rows.Add(row);
                Models[row] = (result.Model(r.Trainer, r.Mode), featurizer);
            }
        }
    }

    static Comparison Compare(List<(ResolvedRun Run, GenerationOutcome Outcome)> outcomes, ImageSet train, ImageSet test,
        IReadOnlyList<ClassifierTrainer> trainers, IReadOnlyList<AugmentationMixing> mixings, int seed, IProgress<StepProgress> progress, CancellationToken cancel)
    {
        var ml = new MLContext(seed);
        var trainView = ml.Data.LoadFromEnumerable(train.Items.Select(i => new ImageRow { ImagePath = i.Path, Label = i.Label }).ToList());
        var testView = ml.Data.LoadFromEnumerable(test.Items.Select(i => new ImageRow { ImagePath = i.Path, Label = i.Label }).ToList());
        var comparison = new Comparison(ml, trainView.Schema);
        for (int k = 0; k < outcomes.Count; k++)
        {
            cancel.ThrowIfCancellationRequested();
            progress.Report(new StepProgress("training classifiers", k, outcomes.Count));
            var (run, outcome) = outcomes[k];
            var augmented = AugmentedTrainingView(trainView, outcome.Images);
            var (featurizer, features) = ImageFeaturizer.Featurize(ml, augmented, new ImageFeaturizerOptions { ImageColumn = "ImagePath" });
            var testFeatures = ml.Data.Cache(featurizer.Transform(testView));
            var result = ClassifierComparison.Run(ml, features, testFeatures, new ClassifierComparisonOptions { Trainers = trainers, Mixings = mixings, ImageColumn = "ImagePath", Seed = seed });
            comparison.Add(run.Strategy.Name(), result, featurizer, includeOriginals: k == 0);
        }
        progress.Report(new StepProgress("training classifiers", outcomes.Count, outcomes.Count));
        return comparison;
    }

    /// <summary>
    /// The train split followed by the synthetic images: soft labels (Diff-Mix) become one weighted row per label of the
    /// same image, and the rows of one image share a synthetic group, so replacement mixing draws them together.
    /// </summary>
    internal static AugmentedDataView AugmentedTrainingView(IDataView trainView, IReadOnlyList<SyntheticImage> images) =>
        new(trainView, "Label", "ImagePath", SyntheticRowValue.FromImages(images));

    /// <summary>report.md with its table, settings and per-class metrics; a bar chart of accuracy; an image grid per class.</summary>
    static class Report
    {
        public static MarkdownTable Table(IReadOnlyList<ExperimentRow> rows)
        {
            var table = new MarkdownTable(["Trainer", "Method", "Mixing", "Micro accuracy", "Macro accuracy", "Log loss", "Training rows", "Seconds"],
                [ColumnAlignment.Left, ColumnAlignment.Left, ColumnAlignment.Left, ColumnAlignment.Right, ColumnAlignment.Right, ColumnAlignment.Right, ColumnAlignment.Right, ColumnAlignment.Right]);
            foreach (var r in rows)
                table.AddRow(r.Trainer, r.Method, r.Mixing, Number(r.MicroAccuracy), Number(r.MacroAccuracy), Number(r.LogLoss), r.TrainingRows, r.TrainingSeconds.ToString("0.00", CultureInfo.InvariantCulture));
            return table;
        }

        static string Number(double value) => double.IsNaN(value) ? "-" : value.ToString("0.0000", CultureInfo.InvariantCulture);

        public static List<string> Write(string folder, IReadOnlyList<ExperimentRow> rows, ExperimentRow best, string modelPath, ImageSet all, ImageSet train, ImageSet test,
            List<(ResolvedRun Run, GenerationOutcome Outcome)> outcomes, ResolvedRun main, double testFraction, string? suffixSource)
        {
            Directory.CreateDirectory(folder);
            var files = new List<string> { Path.Combine(folder, "report.md") };
            var md = new StringBuilder();
            md.Append("# Diff-II augmentation experiment\n\n");
            md.Append(CultureInfo.InvariantCulture, $"Best: **{best.Trainer}** trained on {Describe(best)}, micro accuracy {Number(best.MicroAccuracy)} on the test split. Saved as `{modelPath}`.\n\n");
            md.Append("## Results\n\n").Append(Table(rows).ToMarkdown()).Append('\n');

            var trainers = rows.Select(r => r.Trainer).Distinct().ToList();
            var methods = rows.Select(r => (r.Method, r.Mixing)).Distinct().ToList();
            string MethodLabel((string Method, string Mixing) m) => m.Mixing == "-" ? m.Method : $"{m.Method} {m.Mixing}";
            var series = methods.Select(m => new BarSeries(MethodLabel(m),
                trainers.Select(t => rows.FirstOrDefault(r => r.Trainer == t && r.Method == m.Method && r.Mixing == m.Mixing)?.MicroAccuracy ?? double.NaN).ToList())).ToList();
            var chart = new BarChart(trainers, series)
            {
                Title = "Test accuracy by trainer and training data",
                YAxisTitle = "micro accuracy",
                XAxisTitle = "trainer",
                ShowValues = true,
                YMin = 0,
                YMax = 1,
                AlwaysShowLegend = true,
            };
            string chartPath = Path.Combine(folder, "accuracy.png");
            AtomicFile.WriteAllBytes(chartPath, chart.RenderPng(Math.Max(640, 140 * trainers.Count * Math.Max(1, methods.Count / 2 + 1)), 420));
            files.Add(chartPath);
            md.Append("![accuracy](accuracy.png)\n\n");

            md.Append("## Per-class accuracy\n\n");
            foreach (var trainer in trainers)
            {
                md.Append(CultureInfo.InvariantCulture, $"### {trainer}\n\n");
                var perClass = new MarkdownTable(["Class", "Test images", .. methods.Select(MethodLabel)]);
                foreach (var c in all.Classes)
                {
                    var cells = new List<object?> { c, test.Items.Count(i => i.Label == c) };
                    foreach (var m in methods)
                    {
                        var metrics = rows.FirstOrDefault(r => r.Trainer == trainer && r.Method == m.Method && r.Mixing == m.Mixing)?.PerClass.FirstOrDefault(p => p.ClassName == c);
                        cells.Add(metrics is null ? "-" : Number(metrics.Accuracy));
                    }
                    perClass.AddRow([.. cells]);
                }
                md.Append(perClass.ToMarkdown()).Append('\n');
            }

            md.Append("## Samples\n\nEach grid shows a class: its training images first, then synthetic images of each method.\n\n");
            const int perRow = 8;
            foreach (var (c, index) in all.Classes.Select((c, i) => (c, i)))
            {
                var gridRows = new List<IReadOnlyList<byte[]?>> { train.Items.Where(i => i.Label == c).Take(perRow).Select(i => (byte[]?)File.ReadAllBytes(i.Path)).ToList() };
                var labels = new List<string> { "originals" };
                foreach (var (run, outcome) in outcomes)
                {
                    gridRows.Add(outcome.Images.Where(s => s.ClassName == c).Take(perRow).Select(s => (byte[]?)File.ReadAllBytes(s.ImagePath)).ToList());
                    labels.Add(run.Strategy.Name());
                }
                string name = $"grid-{index:D2}-{Safe(c)}.png";
                string gridPath = Path.Combine(folder, name);
                AtomicFile.WriteAllBytes(gridPath, ImageGrid.RenderPng(gridRows, new ImageGridOptions { CellWidth = 96, CellHeight = 96, RowLabels = labels, Title = c }));
                files.Add(gridPath);
                md.Append(CultureInfo.InvariantCulture, $"![{c}]({name})\n\n");
            }

            md.Append("## Settings\n\n");
            var settings = new MarkdownTable(["Setting", "Value"]);
            settings.AddRow("images", all.Source);
            settings.AddRow("classes", all.Classes.Count);
            settings.AddRow("train / test images", $"{train.Items.Count} / {test.Items.Count} (test fraction {testFraction.ToString(CultureInfo.InvariantCulture)}, stratified)");
            settings.AddRow("model", main.ModelPath);
            settings.AddRow("methods", string.Join(", ", outcomes.Select(o => $"{o.Run.Strategy.Name()} ({o.Outcome.Images.Count} images)")));
            settings.AddRow("metaclass", main.Metaclass);
            settings.AddRow("budget", main.Budget switch { SampleBudget.TargetCount t => $"target count {t.Count}", SampleBudget.Expansion e => $"expansion {e.Rate.ToString(CultureInfo.InvariantCulture)}", _ => "" });
            settings.AddRow("concept learning", $"{main.LearnSteps} steps, LoRA rank {main.LoraRank}, batch {main.Batch}");
            settings.AddRow("inversion steps", main.InversionSteps);
            settings.AddRow("sampling", $"{main.SampleSteps} steps, guidance {main.Guidance.ToString(CultureInfo.InvariantCulture)}, split {main.Split.ToString(CultureInfo.InvariantCulture)}");
            settings.AddRow("suffixes", suffixSource ?? "none");
            settings.AddRow("seed", main.Seed);
            settings.AddRow("features", "ResNet18 (512, ImageNet-pretrained)");
            md.Append(settings.ToMarkdown());

            AtomicFile.WriteAllText(files[0], md.ToString());
            return files;
        }

        static string Safe(string name)
        {
            var safe = new string(name.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_').ToArray());
            return safe.Length > 40 ? safe[..40] : safe;
        }
    }
}
