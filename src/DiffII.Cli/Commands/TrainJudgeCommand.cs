using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffII.Diffusion.Pipelines;
using DiffII.TinyWorld;
using DiffII.TinyWorld.Judging;
using DiffII.TinyWorld.Pretraining;

namespace DiffII.Cli.Commands;

/// <summary>train-judge: the miniature's reference classifier (the judge of faithfulness and of the generator's gates).</summary>
public static class TrainJudgeCommand
{
    public static Command Create(CliApp app)
    {
        var defaults = new JudgeOptions { WorkFolder = "" };
        var work = new Option<string>("--work", "-w") { Description = "Work folder for checkpoints (a rerun resumes there).", Required = true, HelpName = "DIR" };
        var output = new Option<string>("--out", "-o") { Description = "Where the judge (judge.safetensors, judge.json) is written.", Required = true, HelpName = "DIR" };
        var steps = new Option<int>("--judge-steps") { Description = "Training steps.", DefaultValueFactory = _ => defaults.Steps, HelpName = "N" };
        var batch = new Option<int>("--batch") { Description = "Batch size.", DefaultValueFactory = _ => defaults.BatchSize, HelpName = "N" };
        var fashionMnist = new Option<string?>("--fashion-mnist") { Description = "Folder with the full Fashion-MNIST files (default: Debian's dataset-fashion-mnist).", HelpName = "DIR" };
        var command = new Command("train-judge", "Train the tiny world's judge: a CNN on real pictures from every context, never the experiment's few-shot items (resumes from --work).")
        {
            work, output, steps, batch, fashionMnist,
        };
        command.SetAction((parse, cancel) => app.Guard(parse, "train-judge", cli =>
        {
            var clock = Stopwatch.StartNew();
            string? folder = parse.GetValue(fashionMnist);
            var options = new JudgeOptions
            {
                WorkFolder = Path.GetFullPath(parse.GetValue(work)!),
                Seed = parse.GetValue(app.Global.Seed) ?? defaults.Seed,
                Steps = parse.GetValue(steps),
                BatchSize = parse.GetValue(batch),
                FashionMnistFolder = folder,
                ExcludedItems = FewShotItems.ForJudge(FashionMnist.Load(FashionMnistSplit.Train, folder)),
            };
            string outputFolder = Path.GetFullPath(parse.GetValue(output)!);
            using var judge = cli.Track(progress => TinyJudge.Train(options,
                new MethodRun.Adapter<PretrainProgress>(p => progress.Report(new StepProgress(p.Stage, p.Step, p.TotalSteps, p.Loss))), cancel));
            judge.Save(outputFolder);
            File.WriteAllText(Path.Combine(outputFolder, "README.md"), judge.Describe(options));
            cli.Line($"judge: {judge.Card.AccuracyInDistribution:P1} in-distribution, {judge.Card.AccuracyShifted:P1} shifted " +
                     $"({TinyJudge.TestPerClass} real test pictures per class each); saved {outputFolder}");
            cli.Result(new
            {
                status = "ok", command = "train-judge", output = outputFolder, accuracy_in_distribution = judge.Card.AccuracyInDistribution,
                accuracy_shifted = judge.Card.AccuracyShifted, seconds = Math.Round(clock.Elapsed.TotalSeconds, 2),
            });
            return Task.FromResult(CliApp.Ok);
        }, cancel));
        return command;
    }

    /// <summary>
    /// judge-generator: the generator's gates that need no concept learning (judge on real pictures, on VAE round trips,
    /// the kind prior), merged into a gates.json file (keys in percent, as the model card reports them).
    /// </summary>
    public static Command Gates(CliApp app)
    {
        var model = new Option<string?>("--model", "-m") { Description = $"The generator (default: ${ModelLocator.EnvironmentVariable}, else the embedded {ModelLocator.EmbeddedModelFolder}).", HelpName = "DIR|FILE" };
        var judgeFolder = new Option<string>("--judge") { Description = "The judge's folder (train-judge --out).", Required = true, HelpName = "DIR" };
        var output = new Option<string>("--out", "-o") { Description = "The gates file to write or update (JSON).", Required = true, HelpName = "FILE" };
        var samples = new Option<int>("--samples-per-kind") { Description = "Samples from noise per kind for the kind prior (0: skip it).", DefaultValueFactory = _ => 40, HelpName = "N" };
        var fashionMnist = new Option<string?>("--fashion-mnist") { Description = "Folder with the full Fashion-MNIST files (default: Debian's dataset-fashion-mnist).", HelpName = "DIR" };
        var command = new Command("judge-generator", "Measure the generator's gates with the judge: real pictures, VAE round trips, and the kind prior.")
        {
            model, judgeFolder, output, samples, fashionMnist,
        };
        command.SetAction((parse, cancel) => app.Guard(parse, "judge-generator", cli =>
        {
            var clock = Stopwatch.StartNew();
            var test = FashionMnist.Load(FashionMnistSplit.Test, parse.GetValue(fashionMnist));
            using var judge = TinyJudge.Load(Path.GetFullPath(parse.GetValue(judgeFolder)!));
            string modelPath = ModelLocator.Resolve(parse.GetValue(model), Environment.GetEnvironmentVariable(ModelLocator.EnvironmentVariable), AppContext.BaseDirectory);
            using var sd = StableDiffusion.Load(modelPath);
            var gates = GeneratorGates.Measure(sd, judge, test, parse.GetValue(samples), cancellationToken: cancel);

            string path = Path.GetFullPath(parse.GetValue(output)!);
            GatesFile.MergeRecord(path, gates);
            cli.Line($"judge on real pictures {gates.JudgeRealIn:F1} / {gates.JudgeRealShifted:F1} %, on VAE round trips {gates.JudgeVaeIn:F1} / {gates.JudgeVaeShifted:F1} % " +
                     $"(in-distribution / shifted): vae_relative {gates.VaeRelative:F1} %" + (gates.KindPrior is double k ? $", kind_prior {k:F1} %" : ""));
            cli.Result(new { status = "ok", command = "judge-generator", model = modelPath, output = path, gates, seconds = Math.Round(clock.Elapsed.TotalSeconds, 2) });
            return Task.FromResult(CliApp.Ok);
        }, cancel));
        return command;
    }
}
