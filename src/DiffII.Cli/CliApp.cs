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
            default:
                stderr.WriteLine($"diffii: unknown command '{args[0]}'. Run 'diffii --help' for the list.");
                return Task.FromResult(2);
        }
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
