using DiffII.Diffusion.Runtime;
using TorchSharp;

namespace DiffII.Cli;

/// <summary>The diffii command line, callable in-process (tests run it this way).</summary>
public static class CliApp
{
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            stdout.WriteLine("diffii — Diff-II data augmentation for ML.NET");
            stdout.WriteLine();
            stdout.WriteLine("Commands:");
            stdout.WriteLine("  doctor     check that TorchSharp's native backend loads and report the devices");
            stdout.WriteLine("  pretrain-tiny --work DIR --out DIR [--seed N] [--vae-steps N] [--unet-steps N] [--batch N]");
            stdout.WriteLine("             pretrain the embedded tiny generator on Fashion-MNIST scenes (resumes from --work)");
            stdout.WriteLine("  --version  print the version");
            return Task.FromResult(args.Length == 0 ? 1 : 0);
        }
        switch (args[0])
        {
            case "--version":
                stdout.WriteLine(typeof(CliApp).Assembly.GetName().Version?.ToString(3));
                return Task.FromResult(0);
            case "doctor":
                return Task.FromResult(Doctor(stdout, stderr));
            case "pretrain-tiny":
                return Task.FromResult(PretrainTiny(args[1..], stdout, stderr, cancel));
            default:
                stderr.WriteLine($"diffii: unknown command '{args[0]}'. Run 'diffii --help' for the list.");
                return Task.FromResult(2);
        }
    }

    static int PretrainTiny(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var values = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2) values[args[i]] = args[i + 1];
        if (!values.TryGetValue("--work", out var work) || !values.TryGetValue("--out", out var output))
        {
            stderr.WriteLine("diffii pretrain-tiny: --work DIR and --out DIR are required.");
            return 2;
        }
        int Int(string key, int fallback) => values.TryGetValue(key, out var v) ? int.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : fallback;
        var defaults = new DiffII.TinyWorld.Pretraining.PretrainOptions { WorkFolder = work };
        var options = defaults with
        {
            Seed = Int("--seed", (int)defaults.Seed),
            VaeSteps = Int("--vae-steps", defaults.VaeSteps),
            UNetSteps = Int("--unet-steps", defaults.UNetSteps),
            BatchSize = Int("--batch", defaults.BatchSize),
            FashionMnistFolder = values.GetValueOrDefault("--fashion-mnist"),
        };
        TorchRuntime.EnsureLoaded();
        try
        {
            using var sd = new DiffII.TinyWorld.Pretraining.TinyPretrainer(options).Run(output, new SyncProgress<DiffII.TinyWorld.Pretraining.PretrainProgress>(p =>
            {
                if (p.Step % 25 == 0 || p.Step == p.TotalSteps)
                    stdout.WriteLine($"{p.Stage} {p.Step}/{p.TotalSteps} loss {p.Loss:F5} elapsed {p.Elapsed:hh\\:mm\\:ss}");
            }), cancel);
            stdout.WriteLine($"saved {output}");
            return 0;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("diffii pretrain-tiny: stopped; run the same command again to resume.");
            return 130;
        }
        catch (FileNotFoundException e)
        {
            stderr.WriteLine($"diffii pretrain-tiny: {e.Message}");
            return 1;
        }
    }

    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    static int Doctor(TextWriter stdout, TextWriter stderr)
    {
        try
        {
            TorchRuntime.EnsureLoaded();
        }
        catch (TorchRuntimeException e)
        {
            stderr.WriteLine($"diffii: {e.Message}");
            return 1;
        }
        using var x = torch.ones(2, 2);
        stdout.WriteLine($"TorchSharp backend: {TorchRuntime.BuildBackend}; CPU ok (sum of ones(2,2) = {x.sum().item<float>()}); " +
                         $"threads: {torch.get_num_threads()}; CUDA available: {torch.cuda.is_available()}");
        return 0;
    }
}
