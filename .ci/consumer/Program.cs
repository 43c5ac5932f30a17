// The consumption job's console app (.ci/consume): the README's "Using the library directly" snippet, run from the
// packed DiffII.MLNet package on the embedded tiny model, with step counts cut to a handful so it takes seconds.
//   dotnet run -- MODEL_DIR WORK_DIR
using DiffII;
using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Diffusion.Pipelines;
using DiffII.Inversion;
using SkiaSharp;

string model = args[0];
string root = Path.GetFullPath(args[1]);
string birds = Path.Combine(root, "birds");

// A handful of images in one sub-folder per class (drawn here, so the job needs no data set): 3 per class, 32x32.
foreach (var (label, circle) in new[] { ("round", true), ("square", false) })
{
    Directory.CreateDirectory(Path.Combine(birds, label));
    for (int i = 0; i < 3; i++)
    {
        using var bitmap = new SKBitmap(32, 32);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(new SKColor((byte)(40 * i), 90, 160));
            using var paint = new SKPaint { Color = SKColors.White, IsAntialias = true };
            if (circle) canvas.DrawCircle(16, 16, 6 + 2 * i, paint);
            else canvas.DrawRect(8 - i, 8 - i, 16 + 2 * i, 16 + 2 * i, paint);
        }
        using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(Path.Combine(birds, label, $"{i}.png"), png.ToArray());
    }
}

// --- the README snippet (model path, metaclass, suffix preset and step counts adapted to the tiny model) ---
using var sd = StableDiffusion.Load(model);                                   // diffusers folder or single file
var images = Directory.GetDirectories(birds)
    .SelectMany(dir => Directory.GetFiles(dir).Select(f => LabeledImage.FromFile(f, Path.GetFileName(dir))))
    .ToList();
var options = new AugmentationOptions
{
    Metaclass = "shape",
    Strategy = Strategy.DiffII,
    Budget = new SampleBudget.Expansion(1),
    SplitRatio = 0.3,
    Suffixes = DiffII.Suffixes.SuffixPresets.Get("tiny-world").Suffixes,
    Seed = 1,
    Concepts = new ConceptOptions { Metaclass = "shape", Steps = 2, BatchSize = 2 },
    Inversion = new InversionOptions { Steps = 2 },
    Generation = new GenerationOptions { Steps = 2 },
};
using var augmenter = new DiffIIAugmenter(sd, options, workFolder: Path.Combine(root, "work"));
IReadOnlyList<SyntheticImage> synthetic = augmenter.Run(images);
// ---

if (synthetic.Count != images.Count)
    throw new InvalidOperationException($"expected {images.Count} synthetic images (expansion 1), got {synthetic.Count}");
foreach (var image in synthetic)
{
    using var decoded = SKBitmap.Decode(image.ImagePath) ?? throw new InvalidDataException($"{image.ImagePath} is not an image");
    if (decoded.Width != 32 || decoded.Height != 32)
        throw new InvalidDataException($"{image.ImagePath} is {decoded.Width}x{decoded.Height}, not the embedded model's 32x32");
}
// The GLIBCXX fix came with the package: the application's own copy of TorchSharp's native library has the need marked
// weak (on Debian 12 the run above could not have loaded it otherwise; on newer systems this is the only evidence).
if (OperatingSystem.IsLinux())
{
    string lib = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).First();
    var need = DiffII.Build.ElfVersionNeeds.ReadNeeds(File.ReadAllBytes(lib)).FirstOrDefault(n => n.Version == "GLIBCXX_3.4.32");
    if (need is { IsWeak: false })
        throw new InvalidOperationException($"{lib} still needs GLIBCXX_3.4.32 strongly: DiffII.Diffusion's buildTransitive targets did not run");
    Console.WriteLine(DiffII.Diffusion.Runtime.TorchRuntime.DescribeNativeLibrary());
}
Console.WriteLine($"consumer ok: {synthetic.Count} synthetic 32x32 images from {images.Count} originals in {augmenter.WorkFolder}; "
                  + $"ML.NET adapter {typeof(DiffII.MLNet.DiffIIAugmentOptions).Assembly.GetName().Version}");
