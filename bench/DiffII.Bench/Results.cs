namespace DiffII.Bench;

/// <summary>Where and how a benchmark ran.</summary>
public sealed record MachineInfo
{
    public required string CpuModel { get; init; }
    /// <summary>The CPU's bf16 instructions (AVX512-BF16, AMX-BF16) as read from /proc/cpuinfo, in words.</summary>
    public string CpuBFloat16 { get; init; } = "not recorded";
    public required int LogicalCores { get; init; }
    public required int TorchThreads { get; init; }
    public required string Os { get; init; }
    public required string DotnetVersion { get; init; }
    public required string TorchSharpVersion { get; init; }
    /// <summary>The native backend the bench was built with: cpu or cuda.</summary>
    public required string Backend { get; init; }
    public required string Device { get; init; }
    public required string DType { get; init; }
    /// <summary>True only when this run measured on a CUDA device.</summary>
    public required bool CudaMeasured { get; init; }
    public string? GpuName { get; init; }
    public required long MemoryTotalBytes { get; init; }
    public required string StartedUtc { get; init; }
    public required string CommandLine { get; init; }
    public required string Profile { get; init; }
    /// <summary>Other busy processes seen when the run started (their CPU use distorts the numbers), or empty.</summary>
    public IReadOnlyList<string> OtherLoad { get; init; } = [];
    public double LoadAverage1Min { get; init; }
}

/// <summary>A peak-rate reference measured in the same run.</summary>
public sealed record PeakResult(string Name, string Shape, int Repetitions, double MedianSeconds, double MinSeconds, double Gflop, double GflopPerSecond);

/// <summary>One stage at one batch size.</summary>
public sealed record StageResult
{
    public required string Model { get; init; }
    public required int Resolution { get; init; }
    public required string Stage { get; init; }
    public required int Batch { get; init; }
    public int Repetitions { get; init; }
    public double MedianSeconds { get; init; }
    public double MinSeconds { get; init; }
    /// <summary>Samples (prompts, images, latents) per second at the median time.</summary>
    public double SamplesPerSecond { get; init; }
    /// <summary>Counted FLOPs of one call (conv + linear + attention matmuls), in GFLOP.</summary>
    public double? Gflop { get; init; }
    public double? GflopPerSecond { get; init; }
    /// <summary>Achieved GFLOP/s over the best peak of the same run (max of matmul and conv).</summary>
    public double? FractionOfPeak { get; init; }
    /// <summary>Largest resident set seen during the timed calls.</summary>
    public long PeakRssBytes { get; init; }
    /// <summary>Peak resident set minus the resident set before the stage: what the stage itself needed.</summary>
    public long RssIncreaseBytes { get; init; }
    /// <summary>Why the stage was not measured at this batch (memory, time budget), or null.</summary>
    public string? Skipped { get; init; }
    public string? Note { get; init; }
}

/// <summary>Time of one category in a profiled pass.</summary>
public sealed record CategoryTime(string Category, double Seconds, double Share, double Gflop, double? GflopPerSecond);

/// <summary>Where the time of one U-Net evaluation goes.</summary>
public sealed record ProfileResult
{
    public required string Model { get; init; }
    public required int Resolution { get; init; }
    public required int Batch { get; init; }
    public required double TotalSeconds { get; init; }
    /// <summary>The same evaluation without hooks (the profile's overhead is the difference).</summary>
    public required double UnhookedSeconds { get; init; }
    public required IReadOnlyList<CategoryTime> Categories { get; init; }
    public required IReadOnlyList<LayerTime> SlowestLayers { get; init; }
    /// <summary>GFLOP/s of the model's convolutions and linears grouped by layer shape, slowest first.</summary>
    public IReadOnlyList<string> Findings { get; init; } = [];
}

/// <summary>An optimisation measured against its absence in the same run.</summary>
public sealed record OptimisationResult(string Name, string Model, int Resolution, int Batch, string Baseline, double BaselineSeconds,
    string Optimised, double OptimisedSeconds, string? Note)
{
    public double Speedup => OptimisedSeconds > 0 ? BaselineSeconds / OptimisedSeconds : double.NaN;
}

/// <summary>Whether an optimisation the users need is in the code, and where.</summary>
public sealed record OptimisationCheck(string Name, bool Present, string Where);

/// <summary>One full augmentation run of the scaling study.</summary>
public sealed record ScalingPoint
{
    public required string Axis { get; init; }
    public required int Classes { get; init; }
    public required int Shots { get; init; }
    public required int Expansion { get; init; }
    public required int SyntheticImages { get; init; }
    public required int Inversions { get; init; }
    public required double LearnSeconds { get; init; }
    public required double InvertSeconds { get; init; }
    public required double GenerateSeconds { get; init; }
    public double TotalSeconds => LearnSeconds + InvertSeconds + GenerateSeconds;
    public required long PeakRssBytes { get; init; }
}

/// <summary>A line through the points of one scaling axis.</summary>
public sealed record ScalingFit(string Axis, string X, string Y, LinearFit Fit, string Reading);

/// <summary>One sample of the memory-flatness run.</summary>
public sealed record MemorySample(int Images, long RssBytes, long LiveTensors, double Seconds);

public sealed record MemoryFlatnessResult
{
    public required int Images { get; init; }
    public required int BatchSize { get; init; }
    public required int Steps { get; init; }
    public required IReadOnlyList<MemorySample> Samples { get; init; }
    public required double RssSlopeBytesPerImage { get; init; }
    public required double LiveTensorSlopePerImage { get; init; }
    public required long LiveTensorsFirst { get; init; }
    public required long LiveTensorsLast { get; init; }
    public required bool Pass { get; init; }
    public required string Criterion { get; init; }
}

/// <summary>Everything one benchmark run measured.</summary>
public sealed record BenchReport
{
    public required MachineInfo Machine { get; init; }
    public List<PeakResult> Peaks { get; init; } = [];
    public List<StageResult> Stages { get; init; } = [];
    public List<ProfileResult> Profiles { get; init; } = [];
    public List<OptimisationResult> Optimisations { get; init; } = [];
    public List<OptimisationCheck> OptimisationChecks { get; init; } = [];
    public List<ScalingPoint> Scaling { get; init; } = [];
    public List<ScalingFit> ScalingFits { get; init; } = [];
    public MemoryFlatnessResult? Memory { get; set; }
    public List<string> Notes { get; init; } = [];
    public double WallSeconds { get; set; }
    /// <summary>Other busy processes seen when the run ended (load can come and go during a run).</summary>
    public List<string> OtherLoadAtEnd { get; init; } = [];
    public double LoadAverageAtEnd { get; set; }

    /// <summary>The best peak rate of the run (GFLOP/s), the reference for every fraction.</summary>
    public double? PeakGflopPerSecond => Peaks.Count == 0 ? null : Peaks.Max(p => p.GflopPerSecond);
}
