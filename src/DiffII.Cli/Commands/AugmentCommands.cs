using System.CommandLine;
using System.Diagnostics;
using DiffII.Augmentation;
using DiffII.Storage;

namespace DiffII.Cli.Commands;

/// <summary>learn, invert, generate and augment: the method's steps on one work folder, each resuming what is there.</summary>
public static class AugmentCommands
{
    public enum Step { Learn, Invert, Generate, Augment }

    public static Command Create(CliApp app, Step step)
    {
        var (name, description, groups, steps) = step switch
        {
            Step.Learn => ("learn", "Learn one concept (token + LoRA) per class from your images.", OptionGroups.Learn, OptionGroups.Learn),
            Step.Invert => ("invert", "Build the inversion pools (DDIM inversion of every image); learns the concepts first if needed.", OptionGroups.Learn | OptionGroups.Invert, (OptionGroups)0),
            Step.Generate => ("generate", "Generate synthetic images and manifest.jsonl; runs the missing earlier steps first.", OptionGroups.All, OptionGroups.Generate),
            _ => ("augment", "Learn, invert and generate in one go.", OptionGroups.All, (OptionGroups)0),
        };
        var options = new MethodOptions(groups, steps);
        var command = new Command(name, description);
        options.AddTo(command);
        command.SetAction((parse, cancel) => app.Guard(parse, name, output => RunAsync(output, parse, app.Global, options, step, cancel), cancel));
        return command;
    }

    static async Task<int> RunAsync(CliOutput output, ParseResult parse, GlobalOptions global, MethodOptions m, Step step, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        using var start = RunStart.Open(parse, global, m);
        var (work, device, dtype, workLock, saved, merged) = (start.Work, start.Device, start.DType, start.Lock, start.Saved, start.Merged);
        var images = RunPreparation.LoadImages(output, merged, work, saved);
        merged = merged with { ImagesFingerprint = images.Fingerprint() };
        var run = ResolvedRun.From(merged, work, images, RunPreparation.ResolveModel(merged));
        UpFrontChecks.AgainstModelAndImages(run);

        (IReadOnlyList<string> Suffixes, string Source)? suffixes = null;
        if (step is Step.Generate or Step.Augment)
        {
            suffixes = await RunPreparation.ResolveSuffixesAsync(output, parse, m, run, saved, cancel);
            RunPreparation.CheckGenerationUnchanged(saved, run, suffixes?.Suffixes);
        }
        run.ToSettings(merged, suffixes?.Suffixes, suffixes?.Source).Save(work);

        var result = new Dictionary<string, object?>
        {
            ["status"] = "ok",
            ["command"] = step.ToString().ToLowerInvariant(),
            ["work"] = work,
            ["model"] = run.ModelPath,
            ["strategy"] = run.Strategy.Name(),
            ["classes"] = images.Classes.Select(c => new Dictionary<string, object?> { ["name"] = c, ["images"] = images.Items.Count(i => i.Label == c) }).ToList(),
        };
        switch (step)
        {
            case Step.Learn:
            {
                bool learned = MethodRun.Learn(output, run, device, dtype, cancel, workLock);
                string folder = Path.Combine(work, MethodRun.ConceptsFolder);
                if (!run.Strategy.NeedsTokens()) output.Line($"{run.Strategy.Name()} uses no learned concepts; nothing to learn.");
                else output.Line(learned ? $"learned {images.Classes.Count} concepts into {folder}" : $"concepts already learned in {folder}; nothing to do");
                result["concepts"] = run.Strategy.NeedsTokens() ? folder : null;
                result["learned"] = learned;
                break;
            }
            case Step.Invert:
            {
                var outcome = MethodRun.Fit(output, run, [], generate: false, device, dtype, cancel, workLock);
                if (!run.Strategy.NeedsInversions()) output.Line($"{run.Strategy.Name()} uses no inversions; concepts are ready in {work}.");
                else output.Line($"inversion pools ready: {outcome.InversionCount} inversions in {Path.Combine(work, "inversions")}");
                result["inversions"] = outcome.InversionCount;
                break;
            }
            default:
            {
                var outcome = MethodRun.Fit(output, run, suffixes?.Suffixes ?? [], generate: true, device, dtype, cancel, workLock);
                foreach (var failure in outcome.Failures) output.Warning($"sample {failure.SampleId} was not written: {failure.Reason}");
                if (outcome.Failures.Count > 0)
                    output.Warning($"{outcome.Failures.Count} of {outcome.Planned} samples could not be made and were not written; the other images are complete. A rerun tries the missing ones again.");
                output.Line($"{outcome.Images.Count} synthetic images ({run.Strategy.Name()}) in {Path.Combine(work, "synthetic")}; manifest {outcome.ManifestPath}");
                foreach (var c in images.Classes)
                    output.Line($"  {c}: {images.Items.Count(i => i.Label == c)} real, {outcome.Images.Count(s => s.ClassName == c)} synthetic");
                result["synthetic"] = outcome.Images.Count;
                result["planned"] = outcome.Planned;
                result["manifest"] = outcome.ManifestPath;
                result["suffixSource"] = suffixes?.Source;
                result["failed"] = outcome.Failures.Count;
                result["failures"] = outcome.Failures.Select(f => new { sample = f.SampleId, reason = f.Reason }).ToList();
                foreach (var entry in (List<Dictionary<string, object?>>)result["classes"]!)
                    entry["synthetic"] = outcome.Images.Count(s => s.ClassName == (string)entry["name"]!);
                break;
            }
        }
        result["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 2);
        output.Result(result);
        return 0;
    }
}
