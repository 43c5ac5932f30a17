using System.Globalization;
using System.Text;
using DiffII.Reporting;

namespace DiffII.Bench;

/// <summary>The short human summary of a run: what was measured, on what, how to reproduce it, and what it means.</summary>
public static class SummaryMarkdown
{
    static readonly ColumnAlignment L = ColumnAlignment.Left, R = ColumnAlignment.Right;

    /// <summary>The stage measured as "the U-Net step" for the peak-fraction criterion.</summary>
    public const string UNetStage = "guided-step";

    public static string Render(BenchReport report)
    {
        var m = report.Machine;
        var sb = new StringBuilder();
        sb.AppendLine($"# DiffII.Bench — {m.Profile} profile, {m.StartedUtc[..10]}");
        sb.AppendLine();
        sb.AppendLine("Reproduce (from the repository root):");
        sb.AppendLine();
        sb.AppendLine("```bash");
        sb.AppendLine(m.CommandLine);
        sb.AppendLine("```");
        sb.AppendLine();
        sb.AppendLine($"- CPU: {m.CpuModel} (bf16: {m.CpuBFloat16}); {m.LogicalCores} logical cores; torch threads {m.TorchThreads}; memory {Format.Bytes(m.MemoryTotalBytes)}");
        sb.AppendLine($"- {m.Os}; {m.DotnetVersion}; TorchSharp {m.TorchSharpVersion} ({m.Backend} backend); device {m.Device}, {m.DType}");
        sb.AppendLine(m.CudaMeasured
            ? $"- GPU: {m.GpuName} (measured)"
            : "- **GPU numbers were not measured**: this run used the CPU. The same benchmark runs on CUDA (`--device cuda --dtype float16` or `bfloat16`) when built with `-p:TorchBackend=cuda`; that path is kept correct by design (device and dtype are parameters everywhere) and by CPU tests of the same code, not by a GPU measurement.");
        sb.AppendLine(m.OtherLoad.Count == 0
            ? $"- Machine quiet when the run started (1-min load average {m.LoadAverage1Min:F2}; no other process above 0.1 core)."
            : $"- **Other load when the run started** (numbers are distorted by it): {string.Join("; ", m.OtherLoad)}. 1-min load average {m.LoadAverage1Min:F2}.");
        if (report.OtherLoadAtEnd.Count > 0)
            sb.AppendLine($"- **Other load when the run ended**: {string.Join("; ", report.OtherLoadAtEnd)}. 1-min load average {report.LoadAverageAtEnd:F2}.");
        sb.AppendLine($"- Wall time of the whole run: {Format.Seconds(report.WallSeconds)}.");
        sb.AppendLine();
        sb.AppendLine("All models have random weights in their real architectures (speed does not depend on the weights' values): SD 1.5 / 2.1 from their diffusers configs, the tiny model from `TinyModelConfigs`. FLOPs are counted from the shapes each layer really sees (convolutions, linears, the two attention matmuls; norms and activations are not counted), one multiply-add = 2 FLOPs.");
        sb.AppendLine();

        RenderPeaks(sb, report);
        RenderVerdict(sb, report);
        RenderStages(sb, report);
        RenderProjection(sb, report);
        RenderProfiles(sb, report);
        RenderOptimisations(sb, report);
        RenderScaling(sb, report);
        RenderMemory(sb, report);
        if (report.Notes.Count > 0)
        {
            sb.AppendLine("## Notes");
            sb.AppendLine();
            foreach (var note in report.Notes) sb.AppendLine($"- {note}");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    static void RenderPeaks(StringBuilder sb, BenchReport report)
    {
        if (report.Peaks.Count == 0) return;
        sb.AppendLine("## Peak rates measured in this run");
        sb.AppendLine();
        var t = new MarkdownTable(["reference", "shape", "GFLOP", "median", "GFLOP/s"], [L, L, R, R, R]);
        foreach (var p in report.Peaks)
            t.AddRow(p.Name, p.Shape, MarkdownTable.FormatNumber(p.Gflop, 1), Format.Seconds(p.MedianSeconds), Format.Rate(p.GflopPerSecond));
        sb.Append(t.ToMarkdown());
        sb.AppendLine();
        sb.AppendLine($"Fractions below are of the better of the two: **{Format.Rate(report.PeakGflopPerSecond)} GFLOP/s**.");
        sb.AppendLine();
    }

    /// <summary>The issue's criterion: the SD U-Net step at ≥ half the measured peak.</summary>
    static void RenderVerdict(StringBuilder sb, BenchReport report)
    {
        var steps = report.Stages.Where(s => s.Stage == UNetStage && s.Model != "tiny" && s.Skipped is null && s.FractionOfPeak is not null).ToList();
        if (steps.Count == 0) return;
        sb.AppendLine("## U-Net step against the peak");
        sb.AppendLine();
        var t = new MarkdownTable(["model", "resolution", "batch", "GFLOP/s", "of peak", "≥ 50 %"], [L, R, R, R, R, L]);
        foreach (var s in steps)
            t.AddRow(s.Model, s.Resolution, s.Batch, Format.Rate(s.GflopPerSecond), Format.Percent(s.FractionOfPeak), s.FractionOfPeak >= 0.5 ? "yes" : "**no**");
        sb.Append(t.ToMarkdown());
        sb.AppendLine();
    }

    static readonly string[] Stages = ["text-encode", "vae-encode", "inversion-step", "guided-step", "vae-decode", "train-step"];

    static int StageOrder(string stage) => Array.IndexOf(Stages, stage) is int i and >= 0 ? i : Stages.Length;

    static void RenderStages(StringBuilder sb, BenchReport report)
    {
        foreach (var group in report.Stages.GroupBy(s => (s.Model, s.Resolution)))
        {
            sb.AppendLine($"## {group.Key.Model} at {group.Key.Resolution} px");
            sb.AppendLine();
            var t = new MarkdownTable(["stage", "batch", "median", "min", "runs", "samples/s", "GFLOP", "GFLOP/s", "of peak", "peak RSS", "+RSS"],
                [L, R, R, R, R, R, R, R, R, R, R]);
            foreach (var s in group.OrderBy(s => StageOrder(s.Stage)).ThenBy(s => s.Batch))
            {
                if (s.Skipped is not null) { t.AddRow(s.Stage, s.Batch, "skipped", "", "", "", "", "", "", "", s.Skipped); continue; }
                t.AddRow(s.Stage, s.Batch, Format.Seconds(s.MedianSeconds), Format.Seconds(s.MinSeconds), s.Repetitions, Format.Rate(s.SamplesPerSecond),
                    s.Gflop is double g ? MarkdownTable.FormatNumber(g, g >= 10 ? 0 : 2) : "–", Format.Rate(s.GflopPerSecond), Format.Percent(s.FractionOfPeak),
                    Format.Bytes(s.PeakRssBytes), Format.Bytes(s.RssIncreaseBytes));
            }
            sb.Append(t.ToMarkdown());
            sb.AppendLine();
            foreach (var note in group.Where(s => s.Note is not null).Select(s => (s.Stage, s.Note)).Distinct())
                sb.AppendLine($"- {note.Stage}: {note.Note}");
            sb.AppendLine();
        }
    }

    /// <summary>
    /// What one Diff-II image costs from the stage table: 25 inversion steps (shared by the images of a class, so
    /// counted per real image), 25 guided steps and one decode per synthetic image, at the largest measured batch.
    /// </summary>
    static void RenderProjection(StringBuilder sb, BenchReport report)
    {
        var rows = new List<(string Model, int Resolution, int Batch, double Invert, double Generate)>();
        foreach (var group in report.Stages.Where(s => s.Skipped is null).GroupBy(s => (s.Model, s.Resolution)))
        {
            double PerSample(string stage) =>
                group.Where(s => s.Stage == stage).OrderByDescending(s => s.Batch).Select(s => s.MedianSeconds / s.Batch).DefaultIfEmpty(double.NaN).First();
            int batch = group.Where(s => s.Stage == UNetStage).Select(s => s.Batch).DefaultIfEmpty(0).Max();
            double invert = PerSample("vae-encode") + 25 * PerSample("inversion-step");
            double generate = 25 * PerSample(UNetStage) + PerSample("vae-decode");
            if (double.IsFinite(invert) && double.IsFinite(generate)) rows.Add((group.Key.Model, group.Key.Resolution, batch, invert, generate));
        }
        if (rows.Count == 0) return;
        sb.AppendLine("## What a Diff-II run costs (projected from the stages)");
        sb.AppendLine();
        sb.AppendLine("Per real image: VAE encode + 25 inversion steps. Per synthetic image: 25 guided steps (CFG, doubled batch) + VAE decode. At the largest measured batch. 5-shot CUB = 1 000 inversions + 5 000 generations (concept learning not included).");
        sb.AppendLine();
        var t = new MarkdownTable(["model", "resolution", "batch", "per inversion", "per synthetic image", "images/s", "5-shot CUB"], [L, R, R, R, R, R, R]);
        foreach (var r in rows)
            t.AddRow(r.Model, r.Resolution, r.Batch, Format.Seconds(r.Invert), Format.Seconds(r.Generate), Format.Rate(1 / r.Generate),
                Hours(1000 * r.Invert + 5000 * r.Generate));
        sb.Append(t.ToMarkdown());
        sb.AppendLine();
    }

    static string Hours(double seconds) => seconds >= 3600 ? $"{seconds / 3600:F1} h" : seconds >= 60 ? $"{seconds / 60:F1} min" : $"{seconds:F0} s";

    static void RenderProfiles(StringBuilder sb, BenchReport report)
    {
        foreach (var p in report.Profiles)
        {
            sb.AppendLine($"## Where the time goes: one U-Net evaluation, {p.Model} at {p.Resolution} px, batch {p.Batch}");
            sb.AppendLine();
            sb.AppendLine($"{Format.Seconds(p.TotalSeconds)} with timing hooks ({Format.Seconds(p.UnhookedSeconds)} without). Attention = head split + scaled_dot_product_attention + head merge; other = activations, residual adds, concatenations, up-sampling and layout copies (what the hooks do not cover).");
            sb.AppendLine();
            var t = new MarkdownTable(["category", "time", "share", "GFLOP", "GFLOP/s"], [L, R, R, R, R]);
            foreach (var c in p.Categories)
                t.AddRow(c.Category, Format.Seconds(c.Seconds), Format.Percent(c.Share), c.Gflop > 0 ? MarkdownTable.FormatNumber(c.Gflop, 1) : "–", Format.Rate(c.GflopPerSecond));
            sb.Append(t.ToMarkdown());
            sb.AppendLine();
            sb.AppendLine("Layer shapes that take the most time:");
            sb.AppendLine();
            foreach (var f in p.Findings) sb.AppendLine($"- {f}");
            sb.AppendLine();
        }
    }

    static void RenderOptimisations(StringBuilder sb, BenchReport report)
    {
        if (report.OptimisationChecks.Count == 0 && report.Optimisations.Count == 0) return;
        sb.AppendLine("## Optimisations");
        sb.AppendLine();
        if (report.OptimisationChecks.Count > 0)
        {
            var c = new MarkdownTable(["optimisation", "in the code", "where"], [L, L, L]);
            foreach (var o in report.OptimisationChecks) c.AddRow(o.Name, o.Present ? "yes" : "**no**", o.Where);
            sb.Append(c.ToMarkdown());
            sb.AppendLine();
        }
        if (report.Optimisations.Count > 0)
        {
            sb.AppendLine("Measured in this run, baseline against optimised (speed-up = baseline time / optimised time):");
            sb.AppendLine();
            var t = new MarkdownTable(["optimisation", "model", "res", "batch", "baseline", "time", "optimised", "time", "speed-up", "note"], [L, L, R, R, L, R, L, R, R, L]);
            foreach (var o in report.Optimisations)
                t.AddRow(o.Name, o.Model, o.Resolution, o.Batch, o.Baseline, Format.Seconds(o.BaselineSeconds), o.Optimised, Format.Seconds(o.OptimisedSeconds),
                    double.IsFinite(o.Speedup) ? $"{o.Speedup:F2}×" : "–", o.Note ?? "");
            sb.Append(t.ToMarkdown());
            sb.AppendLine();
        }
    }

    static void RenderScaling(StringBuilder sb, BenchReport report)
    {
        if (report.Scaling.Count == 0) return;
        sb.AppendLine("## Scaling of a full augmentation run (tiny architecture)");
        sb.AppendLine();
        var t = new MarkdownTable(["axis", "classes", "shots", "expansion", "images", "inversions", "learn", "invert", "generate", "total", "peak RSS"],
            [L, R, R, R, R, R, R, R, R, R, R]);
        foreach (var p in report.Scaling)
            t.AddRow(p.Axis, p.Classes, p.Shots, p.Expansion, p.SyntheticImages, p.Inversions, Format.Seconds(p.LearnSeconds), Format.Seconds(p.InvertSeconds),
                Format.Seconds(p.GenerateSeconds), Format.Seconds(p.TotalSeconds), Format.Bytes(p.PeakRssBytes));
        sb.Append(t.ToMarkdown());
        sb.AppendLine();
        foreach (var f in report.ScalingFits) sb.AppendLine($"- **{f.Axis}**: {f.Reading}.");
        sb.AppendLine();
    }

    static void RenderMemory(StringBuilder sb, BenchReport report)
    {
        if (report.Memory is not { } mem) return;
        sb.AppendLine($"## Memory over a {mem.Images}-image generation run (tiny architecture)");
        sb.AppendLine();
        sb.AppendLine($"**{(mem.Pass ? "PASS" : "FAIL")}** — {mem.Criterion}.");
        sb.AppendLine();
        sb.AppendLine($"- RSS slope {mem.RssSlopeBytesPerImage / 1024:F2} KiB per image ({mem.RssSlopeBytesPerImage * 1000 / (1 << 20):F1} MiB per 1 000 images); " +
                      $"RSS {Format.Bytes(mem.Samples[0].RssBytes)} after the first batch, {Format.Bytes(mem.Samples[^1].RssBytes)} at the end.");
        sb.AppendLine($"- Live tensors {mem.LiveTensorsFirst} → {mem.LiveTensorsLast} (slope {mem.LiveTensorSlopePerImage.ToString("F4", CultureInfo.InvariantCulture)} per image).");
        sb.AppendLine($"- Batch {mem.BatchSize}, {mem.Steps} DDIM steps per image; {mem.Samples.Count} samples in `memory.csv`.");
        sb.AppendLine();
    }
}
