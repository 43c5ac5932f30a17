using System.CommandLine;
using System.CommandLine.Help;
using System.Net.Http;
using DiffII.Cli.Commands;
using DiffII.Diffusion.Runtime;
using DiffII.Imaging;
using DiffII.Storage;

namespace DiffII.Cli;

/// <summary>
/// The diffii command line, callable in-process: tests run it with their own writers and cancellation token.
/// Exit codes: 0 done, 1 an error (one line on stderr), 2 a usage error, 130 stopped by Ctrl+C (resumable).
/// </summary>
public sealed class CliApp
{
    public const int Ok = 0, Failed = 1, Usage = 2, Stopped = 130;

    readonly TextWriter _stdout;
    readonly TextWriter _stderr;
    readonly bool _terminal;
    readonly VersionOption _version = new();

    CliApp(TextWriter stdout, TextWriter stderr, bool terminal)
    {
        _stdout = stdout;
        _stderr = stderr;
        _terminal = terminal;
        Global = new GlobalOptions();
        // A plain command named "diffii" rather than RootCommand, whose name would be the assembly's (DiffII.Cli) in usage lines.
        Root = new Command("diffii", "diffii — Diff-II data augmentation for ML.NET: learn class concepts, invert, and generate synthetic training images.");
        Root.Options.Add(new HelpOption { Recursive = true });
        Root.Options.Add(_version);
        Global.AddTo(Root);
        Root.Subcommands.Add(AugmentCommands.Create(this, AugmentCommands.Step.Learn));
        Root.Subcommands.Add(AugmentCommands.Create(this, AugmentCommands.Step.Invert));
        Root.Subcommands.Add(AugmentCommands.Create(this, AugmentCommands.Step.Generate));
        Root.Subcommands.Add(AugmentCommands.Create(this, AugmentCommands.Step.Augment));
        Root.Subcommands.Add(ExperimentCommand.Create(this));
        Root.Subcommands.Add(TinyExperimentCommand.Create(this));
        Root.Subcommands.Add(ToolCommands.Doctor(this));
        Root.Subcommands.Add(ToolCommands.PretrainTiny(this));
        Root.Subcommands.Add(TrainJudgeCommand.Create(this));
        Root.Subcommands.Add(TrainJudgeCommand.Gates(this));
        NumericOptions.Install(Root);
    }

    /// <summary>The whole command tree (options installed as a run would see them), for tools and tests that inspect it.</summary>
    public static Command CommandTree() => new CliApp(TextWriter.Null, TextWriter.Null, terminal: false).Root;

    public GlobalOptions Global { get; }
    public Command Root { get; }

    /// <summary>Runs the command line <paramref name="args"/>; progress bars are drawn only when stderr is the process's terminal.</summary>
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        bool terminal = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        return InvariantCulture.Run(() => new CliApp(stdout, stderr, terminal).InvokeAsync(args, cancel));
    }

    async Task<int> InvokeAsync(string[] args, CancellationToken cancel)
    {
        var parse = Root.Parse(args);
        var configuration = new InvocationConfiguration
        {
            Output = _stdout,
            Error = _stderr,
            // Program.cs owns Ctrl+C (it cancels the token once, so the running step checkpoints and stops).
            ProcessTerminationTimeout = null,
            EnableDefaultExceptionHandler = false,
        };
        if (parse.CommandResult.Command == Root && parse.Action is not HelpAction && parse.GetResult(_version) is null && !parse.Tokens.Any(t => t.Type == System.CommandLine.Parsing.TokenType.Argument))
        {
            _stderr.WriteLine("diffii: a command is needed (learn, invert, generate, augment, experiment, tiny-experiment, doctor, pretrain-tiny). Run 'diffii --help'.");
            return Usage;
        }
        if (parse.GetResult(_version) is not null && parse.Errors.Count == 0)
        {
            // VersionOption would print the entry assembly's version, which in-process (tests) is the host's.
            _stdout.WriteLine(typeof(CliApp).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
                .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? typeof(CliApp).Assembly.GetName().Version?.ToString());
            return Ok;
        }
        if (parse.Action is not HelpAction && parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors) _stderr.WriteLine($"diffii: {error.Message}");
            _stderr.WriteLine($"Run 'diffii {string.Join(' ', CommandPath(parse))} --help' for the options.".Replace("  ", " "));
            // --json promises one JSON object on stdout, usage errors included (scripts parse stdout, not stderr).
            if (args.Contains("--json"))
                _stdout.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
                {
                    status = "usage-error",
                    command = string.Join(' ', CommandPath(parse)),
                    errors = parse.Errors.Select(e => e.Message).ToList(),
                }, CliOutput.JsonOptions));
            return Usage;
        }
        return await parse.InvokeAsync(configuration, cancel);
    }

    IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
            if (result.Command != Root) names.Insert(0, result.Command.Name);
        return names;
    }

    /// <summary>
    /// Runs a command body and turns what can go wrong into one line on stderr and an exit code: errors the user can
    /// act on print their message; anything else says it is unexpected; stack traces only with --verbose.
    /// </summary>
    public async Task<int> Guard(ParseResult parse, string command, Func<CliOutput, Task<int>> body, CancellationToken cancel)
    {
        bool verbose = parse.GetValue(Global.Verbose);
        bool json = parse.GetValue(Global.Json);
        var output = new CliOutput(_stdout, _stderr, parse.GetValue(Global.Quiet), json, verbose, _terminal);
        try
        {
            // Before any work: the thread count (libtorch's default of every core oversubscribes shared machines).
            ThreadPolicy.Apply(parse.GetValue(Global.Threads));
            return await body(output);
        }
        catch (Exception e) when (cancel.IsCancellationRequested && IsCancellation(e))
        {
            _stderr.WriteLine($"diffii {command}: stopped; run the same command again to resume.");
            output.Result(new { status = "stopped", command });
            return Stopped;
        }
        catch (Exception e)
        {
            string? message = UserMessage(e);
            _stderr.WriteLine(message is not null
                ? $"diffii {command}: {message}"
                : $"diffii {command}: unexpected error ({e.GetType().Name}): {OneLine(e.Message)}{(verbose ? "" : " (run with --verbose for details)")}");
            if (verbose) _stderr.WriteLine(e.ToString());
            output.Result(new { status = "error", command, error = message ?? OneLine(e.Message) });
            return Failed;
        }
    }

    static bool IsCancellation(Exception e) =>
        e is OperationCanceledException || (e is AggregateException a && a.InnerExceptions.All(IsCancellation)) || (e.InnerException is { } inner && IsCancellation(inner));

    /// <summary>The one-line message of an error the user can act on, or null for an unexpected one.</summary>
    internal static string? UserMessage(Exception e) => e switch
    {
        CliException or ImageDecodeException or TorchRuntimeException or WorkFolderInUseException => OneLine(e.Message),
        // The method's own refusals (a work folder made for other images or options, a bad argument combination).
        InvalidOperationException or ArgumentException or InvalidDataException => OneLine(e.Message),
        FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException => OneLine(e.Message),
        HttpRequestException => "the caption endpoint failed: " + OneLine(e.Message),
        IOException when e.GetType() == typeof(IOException) => OneLine(e.Message),
        DiffII.Diffusion.IO.CheckpointMismatchException or DiffII.Diffusion.IO.CheckpointLayoutException or DiffII.Diffusion.IO.SafeTensorsException => OneLine(e.Message),
        _ => null,
    };

    static string OneLine(string text) => string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()));
}
