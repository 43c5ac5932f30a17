using System.Text.Json;
using System.Text.Json.Serialization;

namespace DiffII.Diffusion.Schedulers;

/// <summary>
/// The configuration of diffusers' <c>DDIMScheduler</c> and <c>DDIMInverseScheduler</c> (<c>scheduler/scheduler_config.json</c>).
/// Property names are the config keys and absent keys take the DDIMScheduler defaults. Unknown keys (e.g. a
/// PNDMScheduler's <c>skip_prk_steps</c> in SD 1.5's config) are ignored, which is what diffusers' <c>from_config</c> does
/// when a pipeline swaps schedulers.
/// </summary>
public sealed record DDIMSchedulerConfig
{
    public const string Linear = "linear", ScaledLinear = "scaled_linear", SquaredCosCapV2 = "squaredcos_cap_v2";
    public const string Epsilon = "epsilon", VPrediction = "v_prediction", Sample = "sample";
    public const string Leading = "leading", Trailing = "trailing", Linspace = "linspace";

    [JsonPropertyName("num_train_timesteps")] public int NumTrainTimesteps { get; init; } = 1000;
    [JsonPropertyName("beta_start")] public double BetaStart { get; init; } = 0.0001;
    [JsonPropertyName("beta_end")] public double BetaEnd { get; init; } = 0.02;
    /// <summary>linear, scaled_linear (Stable Diffusion) or squaredcos_cap_v2.</summary>
    [JsonPropertyName("beta_schedule")] public string BetaSchedule { get; init; } = Linear;
    /// <summary>Explicit betas, one per training timestep; when set, beta_start/beta_end/beta_schedule are not used.</summary>
    [JsonPropertyName("trained_betas")] public double[]? TrainedBetas { get; init; }
    [JsonPropertyName("clip_sample")] public bool ClipSample { get; init; } = true;
    [JsonPropertyName("clip_sample_range")] public double ClipSampleRange { get; init; } = 1.0;
    /// <summary>DDIM: the "previous" alpha product of the last step is 1 (true) or alphas_cumprod[0] (false). Inverse DDIM: the same for the first step's source.</summary>
    [JsonPropertyName("set_alpha_to_one")] public bool SetAlphaToOne { get; init; } = true;
    /// <summary>Added to every timestep with "leading" spacing (SD uses 1).</summary>
    [JsonPropertyName("steps_offset")] public int StepsOffset { get; init; }
    /// <summary>epsilon (SD 1.x, SD 2.x-base), v_prediction (SD 2.x 768) or sample.</summary>
    [JsonPropertyName("prediction_type")] public string PredictionType { get; init; } = Epsilon;
    /// <summary>Dynamic thresholding of the predicted x0 (Imagen); DDIMScheduler only, unsuitable for latent diffusion.</summary>
    [JsonPropertyName("thresholding")] public bool Thresholding { get; init; }
    [JsonPropertyName("dynamic_thresholding_ratio")] public double DynamicThresholdingRatio { get; init; } = 0.995;
    [JsonPropertyName("sample_max_value")] public double SampleMaxValue { get; init; } = 1.0;
    /// <summary>leading, trailing or linspace (linspace: DDIMScheduler only).</summary>
    [JsonPropertyName("timestep_spacing")] public string TimestepSpacing { get; init; } = Leading;
    [JsonPropertyName("rescale_betas_zero_snr")] public bool RescaleBetasZeroSnr { get; init; }

    static readonly string[] BetaSchedules = [Linear, ScaledLinear, SquaredCosCapV2];
    static readonly string[] PredictionTypes = [Epsilon, VPrediction, Sample];
    static readonly string[] Spacings = [Leading, Trailing, Linspace];

    /// <summary>Reads and validates a scheduler_config.json (of any diffusers scheduler class); errors name the file and the key.</summary>
    public static DDIMSchedulerConfig FromFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Scheduler config not found: {path}", path);
        DDIMSchedulerConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<DDIMSchedulerConfig>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid scheduler config ({e.Message})", e);
        }
        if (config is null) throw new InvalidDataException($"{path}: the file holds null, not a scheduler config.");
        config.Validate(path);
        return config;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming <paramref name="source"/> and the offending key.</summary>
    public void Validate(string source = "scheduler config")
    {
        if (NumTrainTimesteps <= 0) throw new InvalidDataException($"{source}: 'num_train_timesteps' must be positive, got {NumTrainTimesteps}.");
        if (TrainedBetas is not null)
        {
            if (TrainedBetas.Length != NumTrainTimesteps)
                throw new InvalidDataException($"{source}: 'trained_betas' has {TrainedBetas.Length} values but 'num_train_timesteps' is {NumTrainTimesteps}.");
        }
        else if (!BetaSchedules.Contains(BetaSchedule))
        {
            throw new InvalidDataException($"{source}: 'beta_schedule' is '{BetaSchedule}'; supported: {string.Join(", ", BetaSchedules)} (or give 'trained_betas').");
        }
        if (!PredictionTypes.Contains(PredictionType))
            throw new InvalidDataException($"{source}: 'prediction_type' is '{PredictionType}'; supported: {string.Join(", ", PredictionTypes)}.");
        if (!Spacings.Contains(TimestepSpacing))
            throw new InvalidDataException($"{source}: 'timestep_spacing' is '{TimestepSpacing}'; supported: {string.Join(", ", Spacings)}.");
        if (StepsOffset < 0) throw new InvalidDataException($"{source}: 'steps_offset' must not be negative, got {StepsOffset}.");
        if (ClipSample && !(ClipSampleRange > 0)) throw new InvalidDataException($"{source}: 'clip_sample_range' must be positive, got {ClipSampleRange}.");
        if (Thresholding && !(DynamicThresholdingRatio > 0 && DynamicThresholdingRatio <= 1))
            throw new InvalidDataException($"{source}: 'dynamic_thresholding_ratio' must be in (0, 1], got {DynamicThresholdingRatio}.");
    }
}
