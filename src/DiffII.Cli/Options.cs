using System.CommandLine;
using System.CommandLine.Parsing;
using DiffII.Augmentation;

namespace DiffII.Cli;

/// <summary>Options every command takes (System.CommandLine recursive options on the root).</summary>
public sealed class GlobalOptions
{
    public Option<string> Device { get; } = new("--device")
    {
        Description = "Where tensors live: cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "cpu",
        Recursive = true,
        HelpName = "cpu|cuda",
    };
    public Option<string> DType { get; } = new("--dtype")
    {
        Description = "Model weights dtype: float32 (CPU default), float16 or bfloat16 (GPUs).",
        DefaultValueFactory = _ => "float32",
        Recursive = true,
        HelpName = "float32|float16|bfloat16",
    };
    public Option<long?> Seed { get; } = new("--seed") { Description = "Seed of every random choice (default 0; saved in the work folder).", Recursive = true };
    public Option<bool> Quiet { get; } = new("--quiet", "-q") { Description = "Print only errors and warnings.", Recursive = true };
    public Option<bool> Json { get; } = new("--json") { Description = "Print one machine-readable JSON result object on stdout (no progress).", Recursive = true };
    public Option<bool> Verbose { get; } = new("--verbose", "-v") { Description = "Print details, and stack traces with errors.", Recursive = true };
    public Option<int?> Threads { get; } = new("--threads") { Description = "CPU threads of the tensor kernels (default: $DIFFII_THREADS, else OMP_NUM_THREADS, else the cores this process may use: affinity and cgroup quota).", Recursive = true, HelpName = "N" };

    public GlobalOptions()
    {
        DType.AcceptOnlyFromAmong("float32", "float16", "bfloat16");
    }

    public void AddTo(Command root)
    {
        root.Options.Add(Device);
        root.Options.Add(DType);
        root.Options.Add(Seed);
        root.Options.Add(Quiet);
        root.Options.Add(Json);
        root.Options.Add(Verbose);
        root.Options.Add(Threads);
    }
}

/// <summary>Which groups of method options a command takes.</summary>
[Flags]
public enum OptionGroups
{
    Learn = 1,
    Invert = 2,
    Generate = 4,
    All = Learn | Invert | Generate,
}

/// <summary>
/// The options of the augmentation commands. Each command gets its own instances (System.CommandLine options belong
/// to one parent), so "--steps" can mean concept-learning steps in <c>learn</c> and sampling steps in <c>generate</c>.
/// </summary>
public sealed class MethodOptions
{
    public Option<string> Work { get; } = new("--work", "-w") { Description = "Work folder: caches every step, so a re-run skips what is done.", Required = true, HelpName = "DIR" };
    public Option<string?> Images { get; } = new("--images") { Description = "Image folder with one sub-folder per class.", HelpName = "DIR" };
    public Option<string?> Csv { get; } = new("--csv") { Description = "CSV of path,label rows (relative paths against the CSV's folder).", HelpName = "FILE" };
    public Option<string?> Model { get; } = new("--model", "-m") { Description = $"Stable Diffusion: a diffusers folder or a single-file checkpoint (default: ${ModelLocator.EnvironmentVariable}, else the embedded {ModelLocator.EmbeddedModelFolder}).", HelpName = "DIR|FILE" };
    public Option<string?> Tokenizer { get; } = new("--tokenizer") { Description = "Tokenizer folder (vocab.json, merges.txt) for single-file checkpoints.", HelpName = "DIR" };
    public Option<string?> Metaclass { get; } = new("--metaclass") { Description = "The dataset's theme word in prompts, e.g. bird, car, flower (default: object).", HelpName = "WORD" };
    public Option<string?> Strategy { get; } = new("--strategy", "-s") { Description = "diff-ii (default), interpolation-only, two-stage-only, random-noise, real-guidance, da-fusion, diff-aug or diff-mix.", HelpName = "NAME" };

    public Option<int?> LearnSteps { get; }
    public Option<int?> LoraRank { get; } = new("--lora-rank") { Description = "LoRA rank of concept learning (default 10).", HelpName = "N" };
    public Option<int?> Batch { get; } = new("--batch") { Description = "Concept-learning batch size (default 8).", HelpName = "N" };

    public Option<int?> InversionSteps { get; } = new("--inversion-steps") { Description = "DDIM inversion steps (default 25).", HelpName = "N" };

    public Option<double?> Expansion { get; } = new("--expansion") { Description = "Synthetic images per real image of each class (default 5).", HelpName = "RATE" };
    public Option<int?> TargetCount { get; } = new("--target-count") { Description = "Long tail: lift every class to N images instead of --expansion.", HelpName = "N" };
    public Option<double?> Split { get; } = new("--split") { Description = "Fraction s of denoising steps that use the suffixed prompt (default 0.3; 0 = no suffixes).", HelpName = "S" };
    public Option<string?> SuffixFile { get; } = new("--suffix-file") { Description = "Prompt suffixes, one per line ('#' comments).", HelpName = "FILE" };
    public Option<string?> SuffixPreset { get; } = new("--suffix-preset") { Description = "A named suffix list (the paper's, and tiny-world for the embedded model): " + string.Join(", ", DiffII.Suffixes.SuffixPresets.All.Select(p => p.Name)) + ".", HelpName = "NAME" };
    public Option<string?> CaptionEndpoint { get; } = new("--caption-endpoint") { Description = "OpenAI-compatible API base URL (e.g. http://localhost:11434/v1 for Ollama): caption your images and summarise suffixes.", HelpName = "URL" };
    public Option<string?> CaptionModel { get; } = new("--caption-model") { Description = "Vision model that captions the images.", HelpName = "NAME" };
    public Option<string?> SummaryModel { get; } = new("--summary-model") { Description = "Language model that summarises captions into suffixes (default: the caption model).", HelpName = "NAME" };
    public Option<string?> ApiKeyEnv { get; } = new("--api-key-env") { Description = "Environment variable holding the endpoint's API key.", HelpName = "VAR" };
    public Option<int> CaptionImages { get; } = new("--caption-images") { Description = "How many images to caption, spread over the classes.", DefaultValueFactory = _ => 24, HelpName = "N" };
    public Option<int> SuffixCount { get; } = new("--suffix-count") { Description = "How many suffixes to ask the summary model for.", DefaultValueFactory = _ => 10, HelpName = "N" };
    public Option<int?> SampleSteps { get; }
    public Option<double?> Guidance { get; } = new("--guidance") { Description = "Classifier-free guidance scale (default 7.5).", HelpName = "SCALE" };

    public OptionGroups Groups { get; }

    /// <param name="stepsMeans">Which step count the bare "--steps" names in this command: Learn, Generate, or neither (0).</param>
    public MethodOptions(OptionGroups groups, OptionGroups stepsMeans = 0)
    {
        Groups = groups;
        LearnSteps = stepsMeans == OptionGroups.Learn
            ? new("--steps", "--learn-steps") { Description = "Concept-learning steps (default 1000).", HelpName = "N" }
            : new("--learn-steps") { Description = "Concept-learning steps (default 1000).", HelpName = "N" };
        SampleSteps = stepsMeans == OptionGroups.Generate
            ? new("--steps", "--sample-steps") { Description = "DDIM sampling steps per image (default 25).", HelpName = "N" }
            : new("--sample-steps") { Description = "DDIM sampling steps per image (default 25).", HelpName = "N" };
        Strategy.Validators.Add(result => CheckStrategy(result, result.GetValueOrDefault<string?>()));
        // Numbers are parsed and range-checked for every command at once (NumericOptions.Install).
    }

    internal static void CheckStrategy(SymbolResult result, string? value)
    {
        if (value is null) return;
        try { StrategyInfo.Parse(value); }
        catch (ArgumentException e) { result.AddError(e.Message.Split(" (Parameter")[0]); }
    }

    public void AddTo(Command command)
    {
        Option[] data = [Work, Images, Csv, Model, Tokenizer, Metaclass, Strategy];
        foreach (var o in data) command.Options.Add(o);
        if (Groups.HasFlag(OptionGroups.Learn)) foreach (var o in new Option[] { LearnSteps, LoraRank, Batch }) command.Options.Add(o);
        if (Groups.HasFlag(OptionGroups.Invert)) command.Options.Add(InversionSteps);
        if (Groups.HasFlag(OptionGroups.Generate))
            foreach (var o in new Option[] { Expansion, TargetCount, Split, SuffixFile, SuffixPreset, CaptionEndpoint, CaptionModel, SummaryModel, ApiKeyEnv, CaptionImages, SuffixCount, SampleSteps, Guidance })
                command.Options.Add(o);
        command.Validators.Add(result =>
        {
            if (result.GetResult(Images) is not null && result.GetResult(Csv) is not null)
                result.AddError("Pass --images or --csv, not both.");
            if (Groups.HasFlag(OptionGroups.Generate))
            {
                if (result.GetResult(Expansion) is not null && result.GetResult(TargetCount) is not null)
                    result.AddError("Pass --expansion or --target-count, not both.");
                int sources = new Option[] { SuffixFile, SuffixPreset, CaptionEndpoint }.Count(o => result.GetResult(o) is not null);
                if (sources > 1) result.AddError("Pass one suffix source: --suffix-file, --suffix-preset or --caption-endpoint.");
            }
        });
    }

    static string? FullPath(string? path) => string.IsNullOrWhiteSpace(path) ? null : Path.GetFullPath(path);

    /// <summary>What the command line sets (unset values stay null, to be filled from the saved settings).</summary>
    public RunSettings Given(ParseResult parse, GlobalOptions global) => new()
    {
        Images = FullPath(parse.GetValue(Images)),
        Csv = FullPath(parse.GetValue(Csv)),
        Model = FullPath(parse.GetValue(Model)),
        Tokenizer = FullPath(parse.GetValue(Tokenizer)),
        Metaclass = parse.GetValue(Metaclass),
        Strategy = parse.GetValue(Strategy) is string s ? StrategyInfo.Parse(s).Name() : null,
        Seed = parse.GetValue(global.Seed),
        LearnSteps = Groups.HasFlag(OptionGroups.Learn) ? parse.GetValue(LearnSteps) : null,
        LoraRank = Groups.HasFlag(OptionGroups.Learn) ? parse.GetValue(LoraRank) : null,
        Batch = Groups.HasFlag(OptionGroups.Learn) ? parse.GetValue(Batch) : null,
        InversionSteps = Groups.HasFlag(OptionGroups.Invert) ? parse.GetValue(InversionSteps) : null,
        Expansion = Groups.HasFlag(OptionGroups.Generate) ? parse.GetValue(Expansion) : null,
        TargetCount = Groups.HasFlag(OptionGroups.Generate) ? parse.GetValue(TargetCount) : null,
        Split = Groups.HasFlag(OptionGroups.Generate) ? parse.GetValue(Split) : null,
        SampleSteps = Groups.HasFlag(OptionGroups.Generate) ? parse.GetValue(SampleSteps) : null,
        Guidance = Groups.HasFlag(OptionGroups.Generate) ? parse.GetValue(Guidance) : null,
    };
}
