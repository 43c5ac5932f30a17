// Diff-II in an ML.NET pipeline: an image folder with one sub-folder per class is split per class into train and
// test; the training images are augmented with Diff-II (in the training scope only), featurised with ResNet18 and fed
// to a classifier; the test images are scored, and the scoring model (without the augmenter) is saved.
//
//   dotnet run --project examples/ImageFolderAugmentation -- IMAGES [--model DIR] [--metaclass WORD] [--out model.zip] ...
using System.Globalization;
using DiffII;
using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Inversion;
using DiffII.MLNet;
using DiffII.Experiments.Classification;
using DiffII.MLNet.Data;
using DiffII.Suffixes;
using Microsoft.ML;
using Microsoft.ML.Data;

const string Usage = """
    Usage: ImageFolderAugmentation IMAGES [options]

    The options are the diffii CLI's ('diffii experiment --help'), with the same names, defaults and refusals.

      IMAGES                  a folder with one sub-folder of images per class
      --model DIR             the Stable Diffusion folder (default: models/tiny-sd in the repository, when present)
      --metaclass WORD        the dataset's theme word in the prompts (default: object)
      --work DIR              the Diff-II work folder (default: a hashed folder under the temp folder)
      --out FILE              where to save the scoring model (default: model.zip)
      --strategy NAME         diff-ii (default), interpolation-only, two-stage-only, random-noise, real-guidance, da-fusion, diff-aug, diff-mix
      --expansion RATE        synthetic images per real image of each class (default: 5)
      --split S               fraction of denoising steps with the suffixed prompt (default: 0.3; 0 = no suffixes)
      --suffix-preset NAME    prompt suffixes by name (default: the preset for the metaclass, if there is one); or
      --suffix-file FILE      prompt suffixes, one per line; without any, pass --split 0
      --test-fraction F       share of each class held out for testing (default: 0.2; at least one image stays for training)
      --device NAME           cpu (default), cuda, cuda:1 ...
      --learn-steps N         concept-learning steps (default: 1000, the paper's)
      --lora-rank N           LoRA rank of concept learning (default: 10)
      --batch N               concept-learning batch size (default: 8)
      --inversion-steps N     DDIM inversion steps (default: 25)
      --sample-steps N        DDIM sampling steps per image (default: 25)
      --guidance SCALE        classifier-free guidance scale (default: 7.5)
      --seed N                (default: 0)
    """;

var positional = new List<string>();
var named = new Dictionary<string, string>(StringComparer.Ordinal);
for (int i = 0; i < args.Length; i++)
{
    if (args[i] is "-h" or "--help") { Console.WriteLine(Usage); return 0; }
    if (args[i].StartsWith("--", StringComparison.Ordinal))
    {
        if (i + 1 >= args.Length) return Fail($"{args[i]} needs a value.");
        named[args[i][2..]] = args[++i];
    }
    else positional.Add(args[i]);
}
string[] known = ["model", "metaclass", "work", "out", "strategy", "expansion", "split", "suffix-preset", "suffix-file", "test-fraction", "device",
                  "learn-steps", "lora-rank", "batch", "inversion-steps", "sample-steps", "guidance", "seed"];
var unknown = named.Keys.FirstOrDefault(k => !known.Contains(k));
if (unknown is not null) return Fail($"Unknown option --{unknown}.");
if (positional.Count != 1) return Fail("Give exactly one image folder.");
if (named.ContainsKey("suffix-preset") && named.ContainsKey("suffix-file")) return Fail("Pass one suffix source: --suffix-file or --suffix-preset.");

string images = positional[0];
string? model = named.GetValueOrDefault("model") ?? DefaultModel();
if (model is null)
    return Fail("No generator: pass --model DIR (a diffusers Stable Diffusion folder); models/tiny-sd was not found in the repository.");
string metaclass = named.GetValueOrDefault("metaclass", "object");
string output = Path.GetFullPath(named.GetValueOrDefault("out", "model.zip"));
double expansion, split, testFraction, guidance;
int learnSteps, loraRank, batch, inversionSteps, sampleSteps;
long seed;
try
{
    // Read the CLI's way: a decimal point whatever the locale, finite, in the CLI's ranges.
    expansion = Number("expansion", 5.0, min: 0, max: OptionLimits.MaxExpansion, minOpen: true);
    split = Number("split", 0.3, min: 0, max: 1);
    testFraction = Number("test-fraction", 0.2, min: 0, max: 1, minOpen: true, maxOpen: true);
    guidance = Number("guidance", 7.5, min: 0, max: OptionLimits.MaxGuidance);
    learnSteps = Whole("learn-steps", 1000, 1, OptionLimits.MaxLearnSteps);
    loraRank = Whole("lora-rank", 10, 1, OptionLimits.MaxLoraRank);
    batch = Whole("batch", 8, 1, OptionLimits.MaxBatch);
    inversionSteps = Whole("inversion-steps", 25, 1, 1000);
    sampleSteps = Whole("sample-steps", 25, 1, 1000);
    seed = named.TryGetValue("seed", out var seedText)
        ? long.TryParse(seedText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long s) ? s : throw new ArgumentException($"--seed takes a whole number; got '{seedText}'.")
        : 0;
}
catch (ArgumentException e) { return Fail(e.Message); }

// The suffixes as the CLI chooses them: a file, a preset, the preset for the metaclass; none only with --split 0.
IReadOnlyList<string> suffixes = [];
if (split > 0)
{
    if (named.TryGetValue("suffix-file", out var suffixFile))
    {
        if (Directory.Exists(suffixFile)) return Fail($"--suffix-file {Path.GetFullPath(suffixFile)} is a folder, not a file; pass a text file with one suffix per line.");
        if (!File.Exists(suffixFile)) return Fail($"--suffix-file {Path.GetFullPath(suffixFile)} does not exist; pass a text file with one suffix per line.");
        suffixes = SuffixPresets.ReadFile(suffixFile);
    }
    else if (named.TryGetValue("suffix-preset", out var preset)) suffixes = SuffixPresets.Get(preset).Suffixes;
    else if (SuffixPresets.All.FirstOrDefault(p => string.Equals(p.Metaclass, metaclass, StringComparison.OrdinalIgnoreCase)) is { } matching)
    {
        Console.WriteLine($"Using the suffix preset {matching.Name} for \"{metaclass}\" (choose with --suffix-preset or --suffix-file).");
        suffixes = matching.Suffixes;
    }
    else
        return Fail($"Diff-II needs prompt suffixes: pass --suffix-preset NAME ({string.Join(", ", SuffixPresets.All.Select(p => p.Name))}), --suffix-file FILE, or --split 0 for none.");
}

// A per-class split, so every class is both trained on and tested (a plain random split can empty a small class).
var walk = ImageFolderDataset.Walk(images);
if (walk.SkippedSummary() is string skipped) Console.WriteLine(skipped);
var rows = walk.Images.Select(i => new ImageFolderRow { Label = i.Label, ImagePath = i.Path }).ToList();
var random = new Random((int)seed);
var trainRows = new List<ImageFolderRow>();
var testRows = new List<ImageFolderRow>();
foreach (var group in rows.GroupBy(r => r.Label))
{
    var shuffled = group.OrderBy(_ => random.Next()).ToList();
    int held = Math.Min((int)Math.Round(testFraction * shuffled.Count, MidpointRounding.AwayFromZero), shuffled.Count - 1);
    testRows.AddRange(shuffled.Take(held));
    trainRows.AddRange(shuffled.Skip(held));
}
Console.WriteLine($"{rows.Count} images in {rows.Select(r => r.Label).Distinct().Count()} classes: {trainRows.Count} for training, {testRows.Count} for testing.");
Console.WriteLine($"Generator: {model}");

var ml = new MLContext(seed: (int)seed);
var train = ml.Data.LoadFromEnumerable(trainRows);
var test = ml.Data.LoadFromEnumerable(testRows);

var augmentOptions = new DiffIIAugmentOptions
{
    LabelColumnName = "Label",
    ImageColumnName = "ImagePath",
    GeneratorPath = model,
    Device = named.GetValueOrDefault("device", "cpu"),
    Metaclass = metaclass,
    Strategy = named.TryGetValue("strategy", out var strategy) ? StrategyInfo.Parse(strategy) : Strategy.DiffII,
    ExpansionRate = expansion,
    Suffixes = suffixes,
    SplitRatio = split,
    Concepts = new ConceptOptions { Steps = learnSteps, LoraRank = loraRank, BatchSize = batch },
    Inversion = new InversionOptions { Steps = inversionSteps },
    Generation = new GenerationOptions { Steps = sampleSteps, GuidanceScale = guidance },
    Seed = seed,
    CacheFolder = named.GetValueOrDefault("work"),
};

// The augmenter is appended with TransformerScope.Training: fitting the chain trains the featurizer and the
// classifier on originals + synthetic rows, while the fitted chain's Transform and its scoring model leave it out.
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.DiffIIAugment(augmentOptions, progress: new ConsoleProgress()), TransformerScope.Training)
    .Append(ImageFeaturizer.Create(ml, train.Schema, new ImageFeaturizerOptions { ImageColumn = "ImagePath", CacheFeatures = false }))
    .AppendCacheCheckpoint(ml)
    .Append(ClassifierTrainer.LbfgsMaximumEntropy().Create(ml, new TrainerColumns("Label", "Features", "SampleWeight")))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
var fitted = pipeline.Fit(train);

var augmenter = fitted.OfType<DiffIIAugmentTransformer>().Single();
Console.WriteLine($"Trained on {trainRows.Count} real and {augmenter.SyntheticRows.Count} synthetic rows (images in {augmenter.CacheFolder}).");
foreach (var failure in augmenter.Failures) Console.WriteLine($"  not generated: {failure}");

var metrics = ml.MulticlassClassification.Evaluate(fitted.Transform(test));
Console.WriteLine($"Test: micro accuracy {metrics.MicroAccuracy:F3}, macro accuracy {metrics.MacroAccuracy:F3}, log-loss {metrics.LogLoss:F3}");
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

// ML.NET saves every transformer of a chain, training-only ones included: save the scoring model.
var scoring = fitted.GetModelFor(TransformerScope.Scoring);
Directory.CreateDirectory(Path.GetDirectoryName(output)!);
ml.Model.Save(scoring, train.Schema, output);
Console.WriteLine($"Scoring model saved to {output} (load it with ClassifierModel.Load; inputs: Label, ImagePath).");
return 0;

double Number(string name, double fallback, double min, double max, bool minOpen = false, bool maxOpen = false)
{
    if (!named.TryGetValue(name, out var text)) return fallback;
    if (text.Contains(','))
        throw new ArgumentException($"--{name} takes a number written with a decimal point, e.g. 1.5, whatever the locale (no decimal comma or thousands separator); got '{text}'.");
    if (!double.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out var value))
        throw new ArgumentException($"--{name} takes a number; got '{text}'.");
    if (!double.IsFinite(value)) throw new ArgumentException($"--{name} must be a finite number; got '{text}'.");
    if ((minOpen ? value <= min : value < min) || (maxOpen ? value >= max : value > max))
        throw new ArgumentException(FormattableString.Invariant($"--{name} must be {(minOpen ? "above" : "at least")} {min} and {(maxOpen ? "below" : "at most")} {max}; got {text}."));
    return value;
}

int Whole(string name, int fallback, int min, int max)
{
    if (!named.TryGetValue(name, out var text)) return fallback;
    if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value))
        throw new ArgumentException($"--{name} takes a whole number between {min} and {max}; got '{text}'.");
    if (value < min || value > max) throw new ArgumentException($"--{name} must be at least {min} and at most {max}; got {text}.");
    return value;
}

static int Fail(string message)
{
    Console.Error.WriteLine(message);
    Console.Error.WriteLine(Usage);
    return 2;
}

// models/tiny-sd in the repository this example sits in (found from the working directory or the build output).
static string? DefaultModel()
{
    foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DiffII.MLNet.sln")))
            {
                string candidate = Path.Combine(dir.FullName, "models", "tiny-sd");
                if (File.Exists(Path.Combine(candidate, "model_index.json"))) return candidate;
                break;
            }
    return null;
}

sealed class ConsoleProgress : IProgress<AugmentationProgress>
{
    string _stage = "";
    int _done = -1;
    public void Report(AugmentationProgress p)
    {
        bool last = p.Done == p.Total;
        if (p.Stage == _stage && (p.Done == _done || !last && p.Done % Math.Max(1, p.Total / 10) != 0)) return;
        (_stage, _done) = (p.Stage, p.Done);
        Console.WriteLine($"  {p.Stage,-8} {p.Done,5}/{p.Total,-5}{(p.Loss is double loss ? $" loss {loss:F4}" : "")}  {p.Elapsed:hh\\:mm\\:ss}");
    }
}
