using System.Diagnostics;
using DiffII.Bench;
using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

BenchOptions options;
try { options = BenchOptions.Parse(args); }
catch (BenchUsageException e)
{
    Console.Error.WriteLine(e.Message);
    return args.Contains("--help") || args.Contains("-h") ? 0 : 2;
}

try
{
    return BenchRun.Execute(options, args, Console.Out);
}
catch (Exception e) when (e is BenchUsageException or TorchRuntimeException or FileNotFoundException or DirectoryNotFoundException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

namespace DiffII.Bench
{
    /// <summary>One benchmark run: the sections the options ask for, then the results files.</summary>
    public static class BenchRun
    {
        public static int Execute(BenchOptions options, IReadOnlyList<string> args, TextWriter log)
        {
            var wall = Stopwatch.StartNew();
            if (options.Threads is int threads) set_num_threads(threads);
            var device = TorchRuntime.ParseDevice(options.Device);
            string shared = options.Shared ?? FindShared();
            string outFolder = Path.GetFullPath(options.Out ?? Path.Combine("bench", "results", $"{options.Profile}-{DateTime.UtcNow:yyyy-MM-dd}"));
            string scratch = Directory.CreateTempSubdirectory("diffii-bench-").FullName;
            string commandLine = "dotnet run --project bench/DiffII.Bench -c Release -- " + string.Join(" ", args.Select(Quote));

            log.WriteLine($"DiffII.Bench ({options.Profile}) → {outFolder}");
            var report = new BenchReport { Machine = MachineProbe.Describe(options, device, commandLine) };
            foreach (var load in report.Machine.OtherLoad) log.WriteLine($"warning: other load: {load}");
            var policy = options.IsFull ? RepetitionPolicy.Full : RepetitionPolicy.Quick;
            var harness = new Harness(device, policy, log);
            var kernels = new KernelBench(harness, report, log);
            try
            {
                log.WriteLine("peak references");
                kernels.MeasurePeaks(options.MatmulSize, options.DType);
                var sections = options.Sections;
                // The SD sections need the models; a run of only the later sections does not build them.
                foreach (string model in sections.Overlaps(["stages", "profile", "optimisations"]) ? options.Models : [])
                {
                    using var sd = BenchModels.Build(model, shared, scratch, device, options.DType);
                    var resolutions = model == "tiny" ? BenchModels.DefaultResolutions("tiny") : options.Resolutions?.ToArray() ?? BenchModels.DefaultResolutions(model);
                    foreach (int resolution in resolutions)
                    {
                        // The tiny model is quick; a budget guards only the SD sections (their batch-8 cases can take minutes each).
                        var budget = new TimeBudget(model == "tiny" ? double.MaxValue : options.BudgetMinutes * 60);
                        if (sections.Contains("stages"))
                        {
                            new StageBench(harness, report, log).Run(model, sd, resolution, options.Batches, budget, scratch, training: true);
                            kernels.DerivedOptimisations(model, resolution);
                        }
                        if (sections.Contains("profile")) kernels.Profile(model, sd, resolution, batch: 2);
                        // The measured optimisations cost several U-Net calls each: run them at each model's smallest resolution.
                        if (sections.Contains("optimisations") && resolution == resolutions.Min()) kernels.Optimisations(model, sd, resolution);
                    }
                }
                if (sections.Contains("bf16")) RunBFloat16(options, device, shared, scratch, harness, report, log);
                if (sections.Contains("scaling") || sections.Contains("memory"))
                {
                    using var tiny = BenchModels.Build("tiny", shared, scratch, device, options.DType);
                    var augmentation = new AugmentationBench(tiny, "tiny", scratch, report, log);
                    if (sections.Contains("scaling"))
                    {
                        // Around a 4-class, 5-shot, ×2 centre; 10 generation steps keep the full grid (about 600 images) within minutes.
                        var settings = options.IsFull ? new AugmentationSettings(20, 25, 10) : new AugmentationSettings(5, 5, 5);
                        if (options.IsFull) augmentation.Scaling([1, 2, 4, 8], [1, 2, 5, 10], [1, 2, 4, 8], settings, centreExpansion: 2);
                        else augmentation.Scaling([1, 2, 4], [1, 2, 5], [1, 2, 5], settings);
                    }
                    if (sections.Contains("memory"))
                        augmentation.MemoryFlatness(options.MemoryImages, options.IsFull ? new AugmentationSettings(5, 10, 5) : new AugmentationSettings(2, 2, 2));
                }
                if (sections.Contains("finetune"))
                    new FineTuneBench(harness, report, log).Run(FineTuneBench.DefaultResolutions, batch: options.IsFull ? 32 : 8, options.DType);
                report.OptimisationChecks.AddRange(OptimisationChecks.All);
            }
            finally
            {
                report.WallSeconds = wall.Elapsed.TotalSeconds;
                report.OtherLoadAtEnd.AddRange(MachineProbe.OtherBusyProcesses());
                report.LoadAverageAtEnd = MachineProbe.LoadAverage();
                ResultsWriter.Write(report, outFolder);
                Directory.Delete(scratch, true);
                log.WriteLine($"wrote {outFolder} ({Format.Seconds(report.WallSeconds)})");
            }
            return 0;
        }

        static string Quote(string arg) => arg.Length > 0 && arg.All(c => char.IsLetterOrDigit(c) || "-_.,/=:".Contains(c)) ? arg : "'" + arg.Replace("'", "'\\''") + "'";

        /// <summary>The shared/ data folder: DIFFII_SHARED, or a "shared" folder beside or above the working directory or the program.</summary>
        /// <summary>bf16 vs float32 on the CPU, on the pretrained tiny generator when the repository has it (real weights give realistic latents).</summary>
        static void RunBFloat16(BenchOptions options, Device device, string shared, string scratch, Harness harness, BenchReport report, TextWriter log)
        {
            if (device.type != DeviceType.CPU) { log.WriteLine($"bf16: measured on the CPU only; skipped on {device}"); return; }
            string? pretrained = FindAbove(Path.Combine("models", "tiny-sd", "model_index.json"));
            string folder = pretrained is null ? SavedRandomTiny(shared, scratch, device) : Path.GetDirectoryName(pretrained)!;
            // Both dtypes load the very same saved weights.
            using var float32 = StableDiffusion.Load(folder, new StableDiffusionLoadOptions { Device = device, DType = ScalarType.Float32 });
            using var bfloat16 = StableDiffusion.Load(folder, new StableDiffusionLoadOptions { Device = device, DType = ScalarType.BFloat16 });
            string weights = pretrained is null ? "seeded random weights" : "pretrained models/tiny-sd";
            new BFloat16Bench(harness, report, log).Run("tiny", weights, float32, bfloat16, float32.ImageSize, options.Batches);
        }

        /// <summary>The seeded random tiny model saved as a diffusers folder (float32), for repositories without the pretrained one.</summary>
        public static string SavedRandomTiny(string shared, string scratch, Device device)
        {
            string folder = Path.Combine(scratch, "tiny-random");
            using var sd = BenchModels.Build("tiny", shared, scratch, device, ScalarType.Float32);
            sd.SaveDiffusersFolder(folder, ScalarType.Float32);
            return folder;
        }

        static string? FindAbove(string relative)
        {
            foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                    if (File.Exists(Path.Combine(dir.FullName, relative))) return Path.Combine(dir.FullName, relative);
            return null;
        }

        static string FindShared()
        {
            string? env = Environment.GetEnvironmentVariable("DIFFII_SHARED");
            if (!string.IsNullOrEmpty(env)) return env;
            foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    string candidate = Path.Combine(dir.FullName, "shared");
                    if (Directory.Exists(Path.Combine(candidate, "data", "sd-configs"))) return candidate;
                }
            throw new DirectoryNotFoundException("The shared/ data folder (with data/sd-configs) was not found above the working directory; pass --shared DIR or set DIFFII_SHARED.");
        }
    }
}
