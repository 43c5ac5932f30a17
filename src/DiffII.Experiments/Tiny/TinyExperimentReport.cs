using System.Globalization;
using System.Text;
using System.Text.Json;
using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Denoising;
using DiffII.Imaging;
using DiffII.Inversion;
using DiffII.Reporting;
using DiffII.Storage;
using static TorchSharp.torch;

namespace DiffII.Experiments.Tiny;

/// <summary>One line of the summary: a method at a shot count, for one trainer, over the seeds.</summary>
public sealed record SummaryRow(string Trainer, int Shots, string Method, double SplitRatio, int Seeds,
    double InDistributionMean, double InDistributionStd, double ShiftedMean, double ShiftedStd,
    double? FaithfulnessMean, double? DiversityMean, int SyntheticImages);

/// <summary>
/// The experiment's report: report.md (tables, settings, honest reading of the numbers), results.csv (every run),
/// summary.csv (mean ± std per method), accuracy.png, faithfulness-diversity.png, a sample grid per class and
/// interpolation strips along φ.
/// </summary>
public static class TinyExperimentReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static IReadOnlyList<SummaryRow> Summarise(IReadOnlyList<RunResult> runs)
    {
        var rows = new List<SummaryRow>();
        var trainers = runs.SelectMany(r => r.Accuracy.Select(a => a.Trainer)).Distinct().ToList();
        foreach (var trainer in trainers)
            foreach (var group in runs.GroupBy(r => (r.Shots, r.Method)).OrderBy(g => g.Key.Shots))
            {
                var list = group.ToList();
                double[] Acc(string test) => list.Select(r => r.Accuracy.First(a => a.Trainer == trainer && a.TestSet == test).MicroAccuracy).ToArray();
                var id = Acc(TinyExperiment.InDistribution);
                var shifted = Acc(TinyExperiment.Shifted);
                var faithful = list.Select(r => r.Faithfulness).OfType<double>().ToArray();
                var diverse = list.Select(r => r.Diversity).OfType<double>().ToArray();
                rows.Add(new SummaryRow(trainer, group.Key.Shots, group.Key.Method, list[0].SplitRatio, list.Count,
                    id.Average(), Std(id), shifted.Average(), Std(shifted),
                    faithful.Length > 0 ? faithful.Average() : null, diverse.Length > 0 ? diverse.Average() : null,
                    (int)list.Average(r => r.SyntheticImages)));
            }
        return rows;
    }

    /// <summary>Sample standard deviation (n − 1); NaN for a single value.</summary>
    public static double Std(IReadOnlyList<double> values)
    {
        if (values.Count < 2) return double.NaN;
        double mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    /// <summary>The accuracy table of one trainer: a row per method, a column pair (in-distribution, shifted) per shot count.</summary>
    public static MarkdownTable AccuracyTable(IReadOnlyList<SummaryRow> summary, string trainer, IReadOnlyList<int> shots, IReadOnlyList<string> methods)
    {
        var headers = new List<string> { "Method" };
        foreach (int k in shots) headers.AddRange([$"{k}-shot in-distribution", $"{k}-shot shifted"]);
        var table = new MarkdownTable(headers, [ColumnAlignment.Left, .. Enumerable.Repeat(ColumnAlignment.Right, headers.Count - 1)]);
        foreach (var method in methods)
        {
            var cells = new List<object?> { method };
            foreach (int k in shots)
            {
                var row = summary.FirstOrDefault(r => r.Trainer == trainer && r.Shots == k && r.Method == method);
                cells.Add(row is null ? "" : Percent(row.InDistributionMean, row.InDistributionStd));
                cells.Add(row is null ? "" : Percent(row.ShiftedMean, row.ShiftedStd));
            }
            table.AddRow([.. cells]);
        }
        return table;
    }

    static string Percent(double mean, double std) => MarkdownTable.FormatMeanStd(100 * mean, double.IsNaN(std) ? double.NaN : 100 * std, 1);

    internal static IReadOnlyList<string> Write(TinyExperimentOptions options, IReadOnlyList<RunResult> runs, TinyExperiment.ReferenceClassifier? reference,
        FewShotWorld world, TinyExperiment experiment, IProgress<ExperimentProgress>? progress, CancellationToken cancellationToken)
    {
        string folder = Path.GetFullPath(options.ReportFolder ?? Path.Combine(options.WorkFolder, "report"));
        Directory.CreateDirectory(folder);
        var files = new List<string>();
        var summary = Summarise(runs);
        var trainers = summary.Select(r => r.Trainer).Distinct().ToList();
        // The main tables: the configured shot counts; the one-shot study has its own table.
        var methods = runs.Where(r => options.Shots.Contains(r.Shots)).Select(r => r.Method).Distinct().ToList();
        var singleImage = runs.Where(r => r.Shots == 1 && !options.Shots.Contains(1)).ToList();

        files.Add(WriteCsv(Path.Combine(folder, "results.csv"), runs));
        files.Add(WriteSummaryCsv(Path.Combine(folder, "summary.csv"), summary));
        files.Add(AccuracyChart(Path.Combine(folder, "accuracy.png"), summary, trainers[0], options.Shots, methods));
        string? scatter = FaithfulnessDiversityChart(Path.Combine(folder, "faithfulness-diversity.png"), summary, trainers[0], options.Shots[0]);
        if (scatter is not null) files.Add(scatter);
        var grids = SampleGrids(Path.Combine(folder, "grids"), options, runs, world, experiment);
        files.AddRange(grids);
        var strips = InterpolationStrips(Path.Combine(folder, "grids"), options, world, experiment, progress, cancellationToken);
        files.AddRange(strips);

        var md = new StringBuilder();
        md.Append("# Diff-II in miniature: few-shot tiny-world classification\n\n");
        md.Append(CultureInfo.InvariantCulture, $"Preset `{options.Preset}`. Ten Fashion-MNIST classes, K ∈ {{{string.Join(", ", options.Shots)}}} training pictures per class rendered in a narrow context ")
          .Append("(plain black, grey or white backgrounds, centred items); tested on held-out items in that context (*in-distribution*) and in contexts ")
          .Append("the training set never shows (*shifted*: striped, checkered, dotted or gradient backgrounds in other colours), the Waterbirds-style test of the paper's Table 3. ")
          .Append(CultureInfo.InvariantCulture, $"Accuracy in %, mean ± sample std over {options.Seeds.Count} seed(s) (each seed draws other training items, scenes and generation noise).\n\n");
        foreach (var trainer in trainers)
        {
            md.Append(CultureInfo.InvariantCulture, $"## Accuracy, {trainer}\n\n");
            md.Append(AccuracyTable(summary, trainer, options.Shots, methods).ToMarkdown()).Append('\n');
            foreach (string sentence in AugmentationVerdict.Sentences(summary, trainer, options.Shots)) md.Append("- ").Append(sentence).Append('\n');
            md.Append('\n');
        }
        md.Append("![accuracy](accuracy.png)\n\n");

        if (singleImage.Count > 0)
        {
            md.Append("## Classes with a single picture\n\n");
            md.Append("The paper's stated limitation (Sec. 5): with one picture per class there is no pair to interpolate. `two-stage-only` starts from noise ")
              .Append("(what is left of Diff-II without a pair); `diff-ii mirror` pairs the picture's inversion with its mirror image's (the library's default); ")
              .Append("`diff-ii mirror+crops` adds two light centre crops (zoom 0.9 and 0.8) to the pool.\n\n");
            foreach (var trainer in trainers)
            {
                var table = new MarkdownTable([$"Method ({trainer})", "In-distribution", "Shifted", "Faithfulness", "Diversity"],
                    [ColumnAlignment.Left, ColumnAlignment.Right, ColumnAlignment.Right, ColumnAlignment.Right, ColumnAlignment.Right]);
                foreach (var row in summary.Where(r => r.Trainer == trainer && r.Shots == 1))
                    table.AddRow(row.Method, Percent(row.InDistributionMean, row.InDistributionStd), Percent(row.ShiftedMean, row.ShiftedStd),
                        row.FaithfulnessMean is double f ? (100 * f).ToString("F1", Inv) + "%" : "-", row.DiversityMean is double d ? d.ToString("F4", Inv) : "-");
                md.Append(table.ToMarkdown()).Append('\n');
            }
        }

        md.Append("## Faithfulness and diversity\n\n");
        md.Append("Proxies for the paper's Table 4 (CLIP score, LPIPS): *faithfulness* is the share of a method's synthetic images that ")
          .Append(options.JudgePath is string judgePath
              ? $"the judge `{Path.GetFileName(judgePath.TrimEnd('/', '\\'))}` (a CNN trained on thousands of real pictures in every context, never the few-shot items; see its model card) "
              : reference is null ? "a reference classifier (not trained in this preset) " : $"a reference classifier (L-BFGS on ResNet18 features of {reference.Result.ImagesPerClass.ToString(Inv)} real pictures per class in every context) ")
          .Append("labels as their intended class; *diversity* is the mean pairwise cosine distance of ResNet18 features within a class, averaged over classes. ")
          .Append("The `original` row's diversity is that of the real training pictures.\n\n");
        if (reference is not null)
            md.Append(CultureInfo.InvariantCulture, $"Reference classifier accuracy: {string.Join(", ", reference.Result.Accuracy.Select(a => $"{a.TestSet} {100 * a.MicroAccuracy:F1}%"))}.\n\n");
        var fd = new MarkdownTable(["Shots", "Method", "Split ratio s", "Synthetic images", "Faithfulness", "Diversity"],
            [ColumnAlignment.Right, ColumnAlignment.Left, ColumnAlignment.Right, ColumnAlignment.Right, ColumnAlignment.Right, ColumnAlignment.Right]);
        foreach (var row in summary.Where(r => r.Trainer == trainers[0]))
            fd.AddRow(row.Shots, row.Method, row.SplitRatio.ToString("0.0#", Inv), row.SyntheticImages,
                row.FaithfulnessMean is double f ? (100 * f).ToString("F1", Inv) + "%" : "-",
                row.DiversityMean is double d ? d.ToString("F4", Inv) : "-");
        md.Append(fd.ToMarkdown()).Append('\n');
        foreach (string sentence in ConceptGateSentences(runs)) md.Append(sentence).Append("\n\n");
        if (scatter is not null) md.Append("![faithfulness vs diversity](faithfulness-diversity.png)\n\n");

        md.Append("## Samples\n\nEach grid is one class: its training pictures first, then the first synthetic images of each method (first shot count, first seed).\n\n");
        foreach (var grid in grids) md.Append(CultureInfo.InvariantCulture, $"![{Path.GetFileNameWithoutExtension(grid)}](grids/{Path.GetFileName(grid)})\n\n");
        if (strips.Count > 0)
        {
            md.Append("## Interpolation along φ\n\nTwo inversions of one class, z = [sin(θ−φ)·z1 + sin(φ)·z2] / sin θ for φ around the whole circle ")
              .Append("(φ = 0 is the first image's inversion, φ = θ the second's; φ > θ and φ < 0 extrapolate), each denoised with the plain learned prompt (the paper's Fig. 4).\n\n");
            foreach (var strip in strips) md.Append(CultureInfo.InvariantCulture, $"![{Path.GetFileNameWithoutExtension(strip)}](grids/{Path.GetFileName(strip)})\n\n");
        }

        md.Append("## Settings\n\n");
        var settings = new MarkdownTable(["Setting", "Value"]);
        settings.AddRow("generator", options.ModelPath);
        settings.AddRow("shots × seeds", $"{string.Join(", ", experiment.AllShots)} × {string.Join(", ", options.Seeds)}");
        settings.AddRow("test pictures", $"{options.TestPerClass} per class in each test set (the same items in both)");
        settings.AddRow("expansion rate", options.ExpansionRate.ToString(Inv));
        settings.AddRow("classifier training", $"ResNet18 features (512); {string.Join(", ", trainers)}; originals with each replaced by a synthetic image of its class with p = {options.ReplacementProbability.ToString(Inv)}, drawn afresh per pass");
        settings.AddRow("concept learning", $"{options.LearnSteps} steps, batch {options.LearnBatch}, LoRA rank {options.LoraRank}, lr LoRA {options.LoraLearningRate.ToString(Inv)} / tokens {options.TokenLearningRate.ToString(Inv)}; shared by all methods of a shot count and seed");
        settings.AddRow("inversion", $"DDIM, {options.InversionSteps} steps, guidance 1.0, from the VAE mean latent × scaling factor");
        settings.AddRow("sampling", $"DDIM {options.SampleSteps} steps, CFG {options.GuidanceScale.ToString(Inv)}; split ratio s = 0.3 at 5 shots and 0.1 at 10 shots unless the method name says otherwise");
        settings.AddRow("suffixes", string.Join("; ", options.Suffixes));
        md.Append(settings.ToMarkdown()).Append('\n');
        md.Append("Diff-Mix's images keep their soft labels (1 − s^0.5 for the source class, s^0.5 for the prompt's class) as weighted rows drawn together; ")
          .Append("under the replacement schedule such an image stands in for an original of its largest-weight class, and faithfulness counts it as that class.\n\n");
        md.Append("The suffixes are the tiny world's contexts written as the paper's suffix lists are (App. A.5.1): generic to the metaclass, ")
          .Append("not to the test set. They name patterned backgrounds, as the paper's bird suffixes name water and land scenes that the Waterbirds test then uses.\n");

        string reportPath = Path.Combine(folder, "report.md");
        AtomicFile.WriteAllText(reportPath, md.ToString());
        files.Insert(0, reportPath);
        AtomicFile.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(new { options.Preset, runs, reference = reference?.Result }, new JsonSerializerOptions { WriteIndented = true }));
        return files;
    }

    static string WriteCsv(string path, IReadOnlyList<RunResult> runs)
    {
        var csv = new StringBuilder("shots,seed,method,strategy,split_ratio,trainer,test_set,micro_accuracy,macro_accuracy,synthetic_images,failed_images,faithfulness,diversity,generation_seconds\n");
        foreach (var r in runs)
            foreach (var a in r.Accuracy)
                csv.Append(CultureInfo.InvariantCulture,
                    $"{r.Shots},{r.Seed},{r.Method},{r.Strategy ?? ""},{r.SplitRatio},{a.Trainer},{a.TestSet},{a.MicroAccuracy:R},{a.MacroAccuracy:R},{r.SyntheticImages},{r.FailedImages},{(r.Faithfulness is double f ? f.ToString("R", Inv) : "")},{(r.Diversity is double d ? d.ToString("R", Inv) : "")},{r.GenerationSeconds}\n");
        AtomicFile.WriteAllText(path, csv.ToString());
        return path;
    }

    static string WriteSummaryCsv(string path, IReadOnlyList<SummaryRow> summary)
    {
        var csv = new StringBuilder("trainer,shots,method,split_ratio,seeds,in_distribution_mean,in_distribution_std,shifted_mean,shifted_std,faithfulness,diversity,synthetic_images\n");
        static string N(double? v) => v is double d && !double.IsNaN(d) ? d.ToString("R", Inv) : "";
        foreach (var r in summary)
            csv.Append(CultureInfo.InvariantCulture,
                $"{r.Trainer},{r.Shots},{r.Method},{r.SplitRatio},{r.Seeds},{N(r.InDistributionMean)},{N(r.InDistributionStd)},{N(r.ShiftedMean)},{N(r.ShiftedStd)},{N(r.FaithfulnessMean)},{N(r.DiversityMean)},{r.SyntheticImages}\n");
        AtomicFile.WriteAllText(path, csv.ToString());
        return path;
    }

    static string AccuracyChart(string path, IReadOnlyList<SummaryRow> summary, string trainer, IReadOnlyList<int> shots, IReadOnlyList<string> methods)
    {
        var series = new List<BarSeries>();
        foreach (int k in shots)
        {
            SummaryRow? Row(string m) => summary.FirstOrDefault(r => r.Trainer == trainer && r.Shots == k && r.Method == m);
            series.Add(new BarSeries($"{k}-shot in-distribution", methods.Select(m => Row(m)?.InDistributionMean ?? double.NaN).ToList(), methods.Select(m => Row(m)?.InDistributionStd ?? double.NaN).ToList()));
            series.Add(new BarSeries($"{k}-shot shifted", methods.Select(m => Row(m)?.ShiftedMean ?? double.NaN).ToList(), methods.Select(m => Row(m)?.ShiftedStd ?? double.NaN).ToList()));
        }
        var chart = new BarChart(methods, series)
        {
            Title = $"Test accuracy by method ({trainer}, mean ± std over seeds)",
            YAxisTitle = "accuracy", XAxisTitle = "method", YMin = 0, YMax = 1, ShowValues = methods.Count * series.Count <= 24, AlwaysShowLegend = true,
        };
        AtomicFile.WriteAllBytes(path, chart.RenderPng(Math.Max(720, 70 * methods.Count * series.Count / 2 + 200), 460));
        return path;
    }

    /// <summary>Faithfulness against diversity per method at one shot count; Diff-II's split-ratio sweep as a connected line.</summary>
    static string? FaithfulnessDiversityChart(string path, IReadOnlyList<SummaryRow> summary, string trainer, int shots)
    {
        var rows = summary.Where(r => r.Trainer == trainer && r.Shots == shots && r.FaithfulnessMean is not null && r.DiversityMean is not null).ToList();
        if (rows.Count == 0) return null;
        var sweep = rows.Where(r => r.Method.StartsWith(Strategy.DiffII.Name(), StringComparison.Ordinal)).OrderBy(r => r.SplitRatio).ToList();
        var others = rows.Except(sweep).ToList();
        var series = new List<ScatterSeries>();
        if (sweep.Count > 0)
            series.Add(new ScatterSeries("Diff-II as s varies", sweep.Select(r => new ScatterPoint(r.DiversityMean!.Value, r.FaithfulnessMean!.Value, $"s={r.SplitRatio.ToString("0.0#", Inv)}")).ToList(), ConnectPoints: true));
        if (others.Count > 0)
            series.Add(new ScatterSeries("other methods", others.Select(r => new ScatterPoint(r.DiversityMean!.Value, r.FaithfulnessMean!.Value, r.Method)).ToList()));
        var chart = new ScatterChart(series)
        {
            Title = $"Faithfulness vs diversity of synthetic images ({shots}-shot)",
            XAxisTitle = "diversity (mean pairwise cosine distance of ResNet18 features)",
            YAxisTitle = "faithfulness (reference classifier agrees)",
            AlwaysShowLegend = true,
        };
        AtomicFile.WriteAllBytes(path, chart.RenderPng(900, 560));
        return path;
    }

    static List<string> SampleGrids(string folder, TinyExperimentOptions options, IReadOnlyList<RunResult> runs, FewShotWorld world, TinyExperiment experiment)
    {
        Directory.CreateDirectory(folder);
        int shots = options.Shots[0];
        long seed = options.Seeds[0];
        const int perRow = 10;
        var few = world.FewShot(shots, seed);
        var methodRuns = runs.Where(r => r.Shots == shots && r.Seed == seed && r.WorkFolder is not null).ToList();
        var manifests = methodRuns.Select(r => (r.Method, Entries: Manifest.Open(Path.Combine(options.WorkFolder, r.WorkFolder!, "manifest.jsonl")).Entries, Folder: Path.Combine(options.WorkFolder, r.WorkFolder!))).ToList();
        var files = new List<string>();
        for (int c = 0; c < FewShotWorld.Classes.Count; c++)
        {
            string name = FewShotWorld.Classes[c];
            var rows = new List<IReadOnlyList<byte[]?>> { few.Where(i => i.ClassName == name).Take(perRow).Select(i => (byte[]?)File.ReadAllBytes(i.Path)).ToList() };
            var labels = new List<string> { "training pictures" };
            foreach (var (method, entries, runFolder) in manifests)
            {
                rows.Add(entries.Where(e => e.ClassName == name).Take(perRow).Select(e => (byte[]?)File.ReadAllBytes(Path.Combine(runFolder, e.File))).ToList());
                labels.Add(method);
            }
            string path = Path.Combine(folder, $"class-{c:D2}-{name}.png");
            AtomicFile.WriteAllBytes(path, ImageGrid.RenderPng(rows, new ImageGridOptions { Scale = 2, RowLabels = labels, Title = name, MaxRowLabelWidth = 200 }));
            files.Add(path);
        }
        return files;
    }

    /// <summary>The paper's Fig. 4: for a few classes, the path along the great circle between two inversions, φ over [−π/2, 3π/2).</summary>
    static List<string> InterpolationStrips(string folder, TinyExperimentOptions options, FewShotWorld world, TinyExperiment experiment,
        IProgress<ExperimentProgress>? progress, CancellationToken cancellationToken)
    {
        var files = new List<string>();
        if (options.InterpolationStrips <= 0) return files;
        var diffII = experiment.MethodsFor(options.Shots[0]).FirstOrDefault(m => m.Strategy is Strategy.DiffII or Strategy.InterpolationOnly);
        if (diffII is null) return files;
        int shots = options.Shots[0];
        long seed = options.Seeds[0];
        string runFolder = experiment.RunFolder(shots, seed, diffII.Name);
        string inversions = Path.Combine(runFolder, "inversions");
        string? conceptsFolder = experiment.EnsureConcepts(diffII.Strategy!.Value, shots, seed, world.FewShot(shots, seed), null, cancellationToken);
        if (conceptsFolder is null || !Directory.Exists(inversions)) return files;

        Directory.CreateDirectory(folder);
        using var sd = experiment.LoadGenerator();
        var concepts = LearnedConcepts.Load(conceptsFolder);
        using var lora = concepts.ApplyTo(sd, mergeLora: true);
        var pool = InversionPool.Load(inversions, FewShotWorld.Classes.Count);
        int strips = Math.Min(options.InterpolationStrips, FewShotWorld.Classes.Count);
        for (int s = 0; s < strips; s++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Report(new ExperimentProgress("interpolation strips", s, strips));
            // Spread the strips over the classes (0, 3, 6, ... for three strips).
            int c = s * FewShotWorld.Classes.Count / strips;
            var ids = pool.IdsByClass[c];
            if (ids.Count < 2) continue;
            using var scope = NewDisposeScope();
            var z1 = pool[ids[0]];
            var z2 = pool[ids[1]];
            double theta = SphericalInterpolation.Angle(z1, z2, batched: false).item<double>();
            var phis = StripPhases(theta);
            int points = phis.Length;
            var starts = stack(phis.Select(phi =>
            {
                using var generator = new TorchSharp.torch.Generator((ulong)(seed + c), CPU);
                return SphericalInterpolation.Slerp(z1, z2, phi, generator);
            }).ToArray());
            string prompt = concepts.Prompt(c);
            var latents = TwoStageDenoiser.Denoise(sd, starts, Enumerable.Repeat(prompt, points).ToList(), Enumerable.Repeat<string?>(null, points).ToList(),
                0, options.SampleSteps, options.GuidanceScale, cancellationToken: cancellationToken);
            var images = sd.DecodeLatents(latents);
            var pngs = Enumerable.Range(0, points).Select(i => ImageCodec.ToPng(images[i])).ToList();
            var captions = phis.Select(p => StripCaption(p, theta)).ToList();
            string path = Path.Combine(folder, $"interpolation-class-{c:D2}-{FewShotWorld.Classes[c]}.png");
            AtomicFile.WriteAllBytes(path, ImageGrid.InterpolationStripPng(pngs, captions, new ImageGridOptions
            {
                Scale = 3, Title = $"{FewShotWorld.Classes[c]}: {InversionPool.SourceImageId(ids[0])} → {InversionPool.SourceImageId(ids[1])}, θ = {theta / Math.PI:0.000}π",
            }));
            files.Add(path);
        }
        progress?.Report(new ExperimentProgress("interpolation strips", strips, strips));
        return files;
    }

    /// <summary>
    /// The concept gate in words, per shot count and kind of concepts (tokens + LoRA, tokens only): the share of
    /// samples from noise, prompted with a learned concept alone, that the judge recognises as its class.
    /// </summary>
    public static IReadOnlyList<string> ConceptGateSentences(IReadOnlyList<RunResult> runs)
    {
        var measured = runs.Where(r => r.ConceptFromNoise is not null && r.Strategy is not null)
            .Select(r => (r.Shots, r.Seed, Lora: StrategyInfo.Parse(r.Strategy!).NeedsLora(), Value: r.ConceptFromNoise!.Value))
            .Distinct().ToList();
        return measured.GroupBy(m => (m.Shots, m.Lora)).OrderBy(g => g.Key.Shots).ThenBy(g => !g.Key.Lora).Select(g =>
        {
            var values = g.Select(m => m.Value).ToList();
            string spread = values.Count > 1 ? string.Create(Inv, $" ± {100 * Std(values):F1}") : "";
            return string.Create(Inv,
                $"Concept gate, {g.Key.Shots}-shot, {(g.Key.Lora ? "tokens + LoRA" : "tokens only")}: {100 * values.Average():F1}{spread} % of samples from noise prompted with a learned concept alone are judged as its class (chance {100.0 / FewShotWorld.Classes.Count:F0} %; {values.Count} seed(s)).");
        }).ToList();
    }

    /// <summary>Points of the strip's grid over one turn of the circle.</summary>
    internal const int StripGridPoints = 12;

    /// <summary>
    /// The strip's phases, ascending: a grid over [−π/2, 3π/2) that holds φ = 0 (the first inversion), plus φ = θ
    /// (the second inversion) unless the grid already holds it, so both source images stand in the strip.
    /// </summary>
    internal static double[] StripPhases(double theta)
    {
        var grid = Enumerable.Range(0, StripGridPoints).Select(i => -Math.PI / 2 + 2 * Math.PI * i / StripGridPoints).ToList();
        if (!grid.Any(phi => Math.Abs(phi - theta) < 1e-9)) grid.Add(theta);
        return [.. grid.Order()];
    }

    /// <summary>"φ=0 (z1)" and "φ=θ (z2)" for the two source inversions, "φ=0.50π" for the others.</summary>
    internal static string StripCaption(double phi, double theta) =>
        Math.Abs(phi) < 1e-9 ? "φ=0 (z1)"
        : Math.Abs(phi - theta) < 1e-9 ? "φ=θ (z2)"
        : string.Create(CultureInfo.InvariantCulture, $"φ={phi / Math.PI:0.00}π");
}
