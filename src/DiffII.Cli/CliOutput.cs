using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using DiffII.Diffusion.Runtime;
using Spectre.Console;

namespace DiffII.Cli;

/// <summary>Progress of one stage of a long step: how far, out of how much, and the training loss where there is one.</summary>
public sealed record StepProgress(string Stage, int Done, int Total, double? Loss = null);

/// <summary>
/// Where the tool writes. Results go to stdout (plain text, or one JSON object with --json); progress and notes go to
/// stderr. Progress bars (Spectre.Console) are drawn only on a terminal; redirected, --quiet or --json runs get
/// plain, throttled progress lines on stderr, or none.
/// </summary>
public sealed class CliOutput(TextWriter stdout, TextWriter stderr, bool quiet, bool json, bool verbose, bool interactive)
{
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public TextWriter Stdout => stdout;
    public TextWriter Stderr => stderr;
    public bool Quiet => quiet;
    public bool Json => json;
    public bool Verbose => verbose;

    /// <summary>A result line for people (not printed with --json or --quiet).</summary>
    public void Line(string text)
    {
        if (!quiet && !json) stdout.WriteLine(text);
    }

    /// <summary>A note about what the tool is doing (stderr; not printed with --quiet or --json).</summary>
    public void Note(string text)
    {
        if (!quiet && !json) stderr.WriteLine(text);
    }

    /// <summary>Detail printed only with --verbose (stderr).</summary>
    public void Detail(string text)
    {
        if (verbose) stderr.WriteLine(text);
    }

    /// <summary>A warning: always printed (stderr), even with --quiet.</summary>
    public void Warning(string text) => stderr.WriteLine("warning: " + text);

    /// <summary>Writes the machine-readable result object (with --json only).</summary>
    public void Result(object result)
    {
        if (json) stdout.WriteLine(JsonSerializer.Serialize(result, result.GetType(), JsonOptions));
    }

    /// <summary>Runs <paramref name="work"/> with a progress display fed by the <see cref="IProgress{T}"/> it is given.</summary>
    public T Track<T>(Func<IProgress<StepProgress>, T> work)
    {
        // Every step of every command runs here: hold the tensors it makes, so none is finalized mid-call (HeldTensors).
        using var held = HeldTensors.Hold();
        if (quiet || json) return work(new Reporter(_ => { }));
        if (!interactive) return work(new PlainProgress(stderr));
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(stderr),
            Ansi = AnsiSupport.Detect,
            Interactive = InteractionSupport.Yes,
        });
        return console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(context =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                return work(new Reporter(p =>
                {
                    if (!tasks.TryGetValue(p.Stage, out var task))
                        tasks[p.Stage] = task = context.AddTask(p.Stage, maxValue: Math.Max(1, p.Total));
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Total == 0 ? 1 : p.Done;
                    task.Description = p.Loss is double loss ? $"{p.Stage} (loss {loss.ToString("0.0000", CultureInfo.InvariantCulture)})" : p.Stage;
                }));
            });
    }

    /// <summary>Reports synchronously on the worker's thread, so progress never arrives after the work returned.</summary>
    sealed class Reporter(Action<StepProgress> report) : IProgress<StepProgress>
    {
        public void Report(StepProgress value) => report(value);
    }

    /// <summary>One line per stage at every tenth of the way (and at the end), with an estimate of the time left.</summary>
    sealed class PlainProgress(TextWriter writer) : IProgress<StepProgress>
    {
        readonly Dictionary<string, (Stopwatch Clock, int Start, int LastTenth)> _stages = [];

        public void Report(StepProgress p)
        {
            if (!_stages.TryGetValue(p.Stage, out var s))
                _stages[p.Stage] = s = (Stopwatch.StartNew(), p.Done, -1);
            int tenth = p.Total <= 0 ? 10 : (int)(10L * p.Done / p.Total);
            if (tenth == s.LastTenth || (tenth < 10 && p.Done == s.Start && s.LastTenth >= 0)) return;
            _stages[p.Stage] = s with { LastTenth = tenth };
            string line = $"{p.Stage} {p.Done}/{p.Total}";
            if (p.Loss is double loss) line += $" loss {loss.ToString("0.0000", CultureInfo.InvariantCulture)}";
            int doneHere = p.Done - s.Start;
            if (doneHere > 0 && p.Done < p.Total)
            {
                var left = TimeSpan.FromSeconds(s.Clock.Elapsed.TotalSeconds / doneHere * (p.Total - p.Done));
                line += $", about {Format(left)} left";
            }
            writer.WriteLine(line);
        }

        static string Format(TimeSpan t) => t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : t.ToString(@"m\:ss", CultureInfo.InvariantCulture);
    }
}
