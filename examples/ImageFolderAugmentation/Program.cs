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

      IMAGES                  a folder with one sub-folder of images per class
      --model DIR             the Stable Diffusion folder (default: models/tiny-sd in the repository, when present)
      --metaclass WORD        the dataset's theme word in the prompts (default: object)
      --out PATH              where to save the scoring model (default: model.zip)
      --expansion RATE        synthetic images per real image of each class (default: 5)
      --strategy NAME         diff-ii (default), interpolation-only, two-stage-only, random-noise, real-guidance, da-fusion, diff-aug, diff-mix
      --suffix-preset NAME    suffixes for the first denoising stage (e.g. cub-5shot); or
      --suffixes FILE         one suffix per line; without either, there is no suffix stage (split ratio 0)
      --test-fraction F       share of each class held out for testing (default: 0.3; at least one image stays for training)
      --cache DIR             the Diff-II work folder (default: a hashed folder under the temp folder)
      --device NAME           cpu (default), cuda, cuda:1 ...
      --concept-steps N       concept-learning steps (default: 1000, the paper's)
      --inversion-steps N     DDIM inversion steps (default: 25)
      --steps N               sampling steps (default: 25)
      --batch N               images per U-Net call (default: 8)
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
string[] known = ["model", "metaclass", "out", "expansion", "strategy", "suffix-preset", "suffixes", "test-fraction", "cache", "device",
                  "concept-steps", "inversion-steps", "steps", "batch", "seed"];
var unknown = named.Keys.FirstOrDefault(k => !known.Contains(k));
if (unknown is not null) return Fail($"Unknown option --{unknown}.");
if (positional.Count != 1) return Fail("Give exactly one image folder.");

string images = positional[0];
string? model = named.GetValueOrDefault("model") ?? DefaultModel();
if (model is null)
    return Fail("No generator: pass --model DIR (a diffusers Stable Diffusion folder); models/tiny-sd was not found in the repository.");
string metaclass = named.GetValueOrDefault("metaclass", "object");
string output = Path.GetFullPath(named.GetValueOrDefault("out", "model.zip"));
double expansion = Number("expansion", 5.0);
double testFraction = Number("test-fraction", 0.3);
int batch = (int)Number("batch", 8);
long seed = (long)Number("seed", 0);
IReadOnlyList<string> suffixes =
    named.TryGetValue("suffixes", out var suffixFile) ? SuffixPresets.ReadFile(suffixFile)
    : named.TryGetValue("suffix-preset", out var preset) ? SuffixPresets.Get(preset).Suffixes
    : [];

// A per-class split, so every class is both trained on and tested (a plain random split can empty a small class).
var rows = ImageFolderDataset.Scan(images);
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
    SplitRatio = suffixes.Count > 0 ? 0.3 : 0,
    Concepts = new ConceptOptions { Metaclass = metaclass, Steps = (int)Number("concept-steps", 1000), BatchSize = batch },
    Inversion = new InversionOptions { Steps = (int)Number("inversion-steps", 25), BatchSize = batch },
    Generation = new GenerationOptions { Steps = (int)Number("steps", 25), BatchSize = batch },
    Seed = seed,
    CacheFolder = named.GetValueOrDefault("cache"),
    Progress = new ConsoleProgress(),
};

// The augmenter is appended with TransformerScope.Training: fitting the chain trains the featurizer and the
// classifier on originals + synthetic rows, while the fitted chain's Transform and its scoring model leave it out.
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.DiffIIAugment(augmentOptions), TransformerScope.Training)
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

double Number(string name, double fallback)
{
    if (!named.TryGetValue(name, out var text)) return fallback;
    if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)) return value;
    throw new ArgumentException($"--{name} needs a number; got '{text}'.");
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
