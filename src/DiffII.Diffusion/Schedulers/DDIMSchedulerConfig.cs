using System.Text.Json;
using System.Text.Json.Serialization;

namespace DiffII.Diffusion.Schedulers;

/// <summary>
/// A diffusers scheduler_config.json, read with DDIMScheduler's <c>from_config</c> semantics: unknown keys (e.g. the
/// PNDM-only <c>skip_prk_steps</c> of SD 1.5's file) are ignored and missing keys take DDIM's defaults.
/// </summary>
public sealed record DDIMSchedulerConfig
{
    [JsonPropertyName("num_train_timesteps")] public int NumTrainTimesteps { get; init; } = 1000;
    [JsonPropertyName("beta_start")] public double BetaStart { get; init; } = 0.0001;
    [JsonPropertyName("beta_end")] public double BetaEnd { get; init; } = 0.02;
    /// <summary>linear, scaled_linear or squaredcos_cap_v2.</summary>
    [JsonPropertyName("beta_schedule")] public string BetaSchedule { get; init; } = "linear";
    [JsonPropertyName("trained_betas")] public double[]? TrainedBetas { get; init; }
    [JsonPropertyName("clip_sample")] public bool ClipSample { get; init; } = true;
    [JsonPropertyName("clip_sample_range")] public double ClipSampleRange { get; init; } = 1.0;
    [JsonPropertyName("set_alpha_to_one")] public bool SetAlphaToOne { get; init; } = true;
    [JsonPropertyName("steps_offset")] public int StepsOffset { get; init; }
    /// <summary>epsilon, v_prediction or sample.</summary>
    [JsonPropertyName("prediction_type")] public string PredictionType { get; init; } = "epsilon";
    /// <summary>leading, trailing or linspace.</summary>
    [JsonPropertyName("timestep_spacing")] public string TimestepSpacing { get; init; } = "leading";
    [JsonPropertyName("rescale_betas_zero_snr")] public bool RescaleBetasZeroSnr { get; init; }
    [JsonPropertyName("thresholding")] public bool Thresholding { get; init; }

    static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowReadingFromString };

    public static DDIMSchedulerConfig FromFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Scheduler config not found: {path}", path);
        return FromJson(File.ReadAllText(path), path);
    }

    public static DDIMSchedulerConfig FromJson(string json, string sourceName = "scheduler_config.json")
    {
        DDIMSchedulerConfig config;
        try { config = JsonSerializer.Deserialize<DDIMSchedulerConfig>(json, Json) ?? throw new InvalidDataException($"{sourceName} is empty."); }
        catch (JsonException e) { throw new InvalidDataException($"{sourceName}: {e.Message}", e); }
        config.Validate(sourceName);
        return config;
    }

    public string ToJson() => JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true });

    public void Validate(string sourceName = "scheduler config")
    {
        if (NumTrainTimesteps <= 0) throw new InvalidDataException($"{sourceName}: num_train_timesteps must be positive (got {NumTrainTimesteps}).");
        if (TrainedBetas is null && BetaSchedule is not ("linear" or "scaled_linear" or "squaredcos_cap_v2"))
            throw new NotSupportedException($"{sourceName}: beta_schedule '{BetaSchedule}' is not supported (linear, scaled_linear, squaredcos_cap_v2).");
        if (TrainedBetas is not null && TrainedBetas.Length != NumTrainTimesteps)
            throw new InvalidDataException($"{sourceName}: trained_betas has {TrainedBetas.Length} values for {NumTrainTimesteps} timesteps.");
        if (PredictionType is not ("epsilon" or "v_prediction" or "sample"))
            throw new NotSupportedException($"{sourceName}: prediction_type '{PredictionType}' is not supported (epsilon, v_prediction, sample).");
        if (TimestepSpacing is not ("leading" or "trailing" or "linspace"))
            throw new NotSupportedException($"{sourceName}: timestep_spacing '{TimestepSpacing}' is not supported (leading, trailing, linspace).");
        if (Thresholding)
            throw new NotSupportedException($"{sourceName}: thresholding (dynamic thresholding for pixel-space models) is not supported; Stable Diffusion configs leave it false.");
    }
}
