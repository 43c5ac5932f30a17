using System.CommandLine;
using System.Globalization;
using DiffII.Augmentation;
using DiffII.Experiments.Tiny;

namespace DiffII.Cli.Commands;

/// <summary>
/// diffii tiny-experiment: the paper's few-shot and distribution-shift experiments in miniature, on the embedded tiny
/// generator and the tiny world. The quick preset is the README's first command (a few minutes on two cores); the
/// full preset is the committed experiment.
/// </summary>
public static class TinyExperimentCommand
{
    public static Command Create(CliApp app)
    {
        var preset = new Option<string>("--preset", "-p") { Description = "quick (5-shot, original vs Diff-II, one seed) or full (5/10-shot, every method, 3 seeds, s sweep).", DefaultValueFactory = _ => "quick", HelpName = "quick|full" };
        preset.AcceptOnlyFromAmong("quick", "full");
        var work = new Option<string?>("--work", "-w") { Description = "Work folder (data, runs, features); a rerun resumes there. Default: diffii-tiny-experiment/PRESET.", HelpName = "DIR" };
        var output = new Option<string?>("--out", "-o") { Description = "Report folder (default: WORK/report).", HelpName = "DIR" };
        var model = new Option<string?>("--model", "-m") { Description = $"Generator (default: ${ModelLocator.EnvironmentVariable}, else the embedded {ModelLocator.EmbeddedModelFolder}).", HelpName = "DIR|FILE" };
        var shots = new Option<string?>("--shots") { Description = "Comma-separated training pictures per class, e.g. 5,10.", HelpName = "LIST" };
        var seeds = new Option<string?>("--seeds") { Description = "Comma-separated seeds, e.g. 1,2,3.", HelpName = "LIST" };
        var methods = new Option<string?>("--methods") { Description = "Comma-separated: original and strategy names (diff-ii, interpolation-only, two-stage-only, real-guidance, da-fusion, diff-aug, diff-mix).", HelpName = "LIST" };
        var trainers = new Option<string?>("--trainers") { Description = "Comma-separated classifiers: lbfgs, sdca, lightgbm, finetune (ResNet-18 fine-tuned on the images, the paper's protocol). Default: the preset's.", HelpName = "LIST" };
        trainers.Validators.Add(r =>
        {
            foreach (var t in List(r.GetValueOrDefault<string?>()) ?? [])
                if (!TinyExperimentOptions.TrainerNames.Contains(t.ToLowerInvariant())) r.AddError($"Unknown trainer '{t}' in --trainers; use {string.Join(", ", TinyExperimentOptions.TrainerNames)}.");
        });
        var testPerClass = new Option<int?>("--test-per-class") { Description = "Test pictures per class in each test set.", HelpName = "N" };
        var learnSteps = new Option<int?>("--learn-steps") { Description = "Concept-learning steps.", HelpName = "N" };
        var guidance = new Option<double?>("--guidance") { Description = "Classifier-free guidance scale of sampling (the paper: 7.5).", HelpName = "SCALE" };
        var referencePerClass = new Option<int?>("--reference-per-class") { Description = "Real pictures per class for the reference classifier (0: none); it scores faithfulness when there is no judge.", HelpName = "N" };
        var judge = new Option<string?>("--judge") { Description = "The judge that scores faithfulness (a train-judge folder). Default: models/tiny-judge beside the embedded model, when the generator is that model.", HelpName = "DIR" };
        var conceptSamples = new Option<int?>("--concept-samples") { Description = "Samples from noise per class for the concept gate (a learned concept alone, judged as its class); 0: none. Needs a judge. [default: 20]", HelpName = "N" };
        var gates = new Option<string?>("--gates") { Description = "Merge the 5-shot gates (originals, Diff-II, seed spread, faithfulness, concept gate; percent) into this JSON file, e.g. models/tiny-sd/gates.json.", HelpName = "FILE" };
        var fashionMnist = new Option<string?>("--fashion-mnist") { Description = "Folder with the four Fashion-MNIST *-ubyte.gz files (default: the shipped subset for quick, Debian's package for full).", HelpName = "DIR" };
        var command = new Command("tiny-experiment", "Few-shot and shifted-context classification on the tiny world: original vs Diff-II (and the baselines), with a report.")
        {
            preset, work, output, model, shots, seeds, methods, trainers, testPerClass, learnSteps, guidance, referencePerClass, judge, conceptSamples, gates, fashionMnist,
        };
        command.SetAction((parse, cancel) => app.Guard(parse, "tiny-experiment", cli =>
        {
            string name = parse.GetValue(preset)!;
            string workFolder = Path.GetFullPath(parse.GetValue(work) ?? Path.Combine("diffii-tiny-experiment", name));
            string modelPath = ModelLocator.Resolve(parse.GetValue(model), Environment.GetEnvironmentVariable(ModelLocator.EnvironmentVariable), AppContext.BaseDirectory);
            ModelLocator.ParseDevice(parse.GetValue(app.Global.Device)!);
            var options = name == "full" ? TinyExperimentOptions.Full(workFolder, modelPath) : TinyExperimentOptions.Quick(workFolder, modelPath);
            options = options with
            {
                ReportFolder = parse.GetValue(output) is string o ? Path.GetFullPath(o) : null,
                Shots = Ints(parse.GetValue(shots), "--shots") ?? options.Shots,
                Seeds = Longs(parse.GetValue(seeds)) ?? (parse.GetValue(app.Global.Seed) is long one ? [one] : options.Seeds),
                Methods = Methods(parse.GetValue(methods)) ?? options.Methods,
                Trainers = List(parse.GetValue(trainers))?.Select(n => n.ToLowerInvariant()).ToList() ?? options.Trainers,
                TestPerClass = parse.GetValue(testPerClass) ?? options.TestPerClass,
                LearnSteps = parse.GetValue(learnSteps) ?? options.LearnSteps,
                GuidanceScale = parse.GetValue(guidance) ?? options.GuidanceScale,
                ReferencePerClass = parse.GetValue(referencePerClass) ?? options.ReferencePerClass,
                JudgePath = parse.GetValue(judge) is string j ? Path.GetFullPath(j) : EmbeddedJudge(modelPath),
                ConceptSamplesPerClass = parse.GetValue(conceptSamples) ?? options.ConceptSamplesPerClass,
                GatesPath = parse.GetValue(gates) is string g ? Path.GetFullPath(g) : null,
                FashionMnistFolder = parse.GetValue(fashionMnist) is string f ? Path.GetFullPath(f) : null,
                Device = parse.GetValue(app.Global.Device)!,
                DType = ModelLocator.ParseDType(parse.GetValue(app.Global.DType)!),
            };
            cli.Note($"tiny experiment ({name}): generator {modelPath}, work folder {workFolder}");
            var outcome = cli.Track(progress => new TinyExperiment(options).Run(
                new MethodRun.Adapter<ExperimentProgress>(p => progress.Report(new StepProgress(p.Stage, p.Done, p.Total, p.Loss))), cancel));

            var summary = TinyExperimentReport.Summarise(outcome.Runs);
            // The console table has the configured shot counts' columns; the one-shot study's arms are in the report.
            var methodNames = outcome.Runs.Where(r => options.Shots.Contains(r.Shots)).Select(r => r.Method).Distinct().ToList();
            foreach (var trainer in summary.Select(r => r.Trainer).Distinct())
            {
                cli.Line($"accuracy (%), {trainer}, mean ± std over {options.Seeds.Count} seed(s):");
                cli.Line(TinyExperimentReport.AccuracyTable(summary, trainer, options.Shots, methodNames).ToMarkdown());
                foreach (string sentence in AugmentationVerdict.Sentences(summary, trainer, options.Shots)) cli.Line(sentence);
            }
            foreach (string sentence in TinyExperimentReport.ConceptGateSentences(outcome.Runs)) cli.Line(sentence);
            if (options.GatesPath is not null) cli.Line($"gates: {options.GatesPath}");
            cli.Line($"report: {outcome.ReportFiles[0]}");
            cli.Line($"done in {outcome.Elapsed.TotalMinutes.ToString("0.0", CultureInfo.InvariantCulture)} min");
            cli.Result(new
            {
                status = "ok",
                command = "tiny-experiment",
                preset = name,
                work = workFolder,
                model = modelPath,
                report = outcome.ReportFiles[0],
                files = outcome.ReportFiles,
                summary,
                runs = outcome.Runs,
                seconds = Math.Round(outcome.Elapsed.TotalSeconds, 1),
            });
            return Task.FromResult(CliApp.Ok);
        }, cancel));
        return command;
    }

    /// <summary>models/tiny-judge when <paramref name="modelPath"/> is the embedded models/tiny-sd beside it; else none.</summary>
    static string? EmbeddedJudge(string modelPath)
    {
        var model = new DirectoryInfo(Path.GetFullPath(modelPath).TrimEnd(Path.DirectorySeparatorChar));
        if (model.Name != Path.GetFileName(ModelLocator.EmbeddedModelFolder) || model.Parent is null) return null;
        string judge = Path.Combine(model.Parent.FullName, "tiny-judge");
        return File.Exists(Path.Combine(judge, "judge.safetensors")) ? judge : null;
    }

    static IReadOnlyList<string>? List(string? text) =>
        text is null ? null : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.OrdinalIgnoreCase).ToList();

    /// <summary>The most training pictures per class a tiny experiment takes: few-shot sets, well inside Fashion-MNIST's 6 000 items a class.</summary>
    const int MaxShots = 1000;

    static IReadOnlyList<int>? Ints(string? text, string option) => List(text)?.Select(t =>
        int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0
            ? v <= MaxShots ? v : throw new CliException($"{option}: {v} is more than {MaxShots} pictures per class; the tiny experiment is a few-shot study.")
            : throw new CliException($"{option}: '{t}' is not a positive whole number.")).ToList();

    static IReadOnlyList<long>? Longs(string? text) => List(text)?.Select(t =>
        long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : throw new CliException($"--seeds: '{t}' is not a whole number.")).ToList();

    static IReadOnlyList<ExperimentMethod>? Methods(string? text) => List(text)?.Select(t =>
    {
        if (t.Equals("original", StringComparison.OrdinalIgnoreCase)) return ExperimentMethod.Original;
        try { return ExperimentMethod.Of(StrategyInfo.Parse(t)); }
        catch (ArgumentException) { throw new CliException($"--methods: '{t}' is not 'original' or a strategy (diff-ii, interpolation-only, two-stage-only, random-noise, real-guidance, da-fusion, diff-aug, diff-mix)."); }
    }).ToList();
}
