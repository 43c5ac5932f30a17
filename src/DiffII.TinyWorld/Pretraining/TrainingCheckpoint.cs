using System.Text.Json;
using DiffII.Diffusion.IO;
using DiffII.Storage;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.TinyWorld.Pretraining;

/// <summary>Where a training stage stands: the next step to run and the loss curve so far.</summary>
public sealed record StageState(int Step, List<LossPoint> Losses, double? ScalingFactor = null, double ElapsedSeconds = 0);

public sealed record LossPoint(int Step, double Loss);

/// <summary>
/// Saves and restores one training stage (weights, optimiser moments, step, losses) in a work folder. Every file is
/// written to a temporary name and renamed, and the state file goes last, so an interruption at any moment leaves
/// the previous checkpoint intact and a resumed run continues from it exactly.
/// </summary>
public sealed class TrainingCheckpoint(string folder, string stage)
{
    string WeightsPath => Path.Combine(folder, $"{stage}.safetensors");
    string ExtraPath(string name) => Path.Combine(folder, $"{stage}.{name}.safetensors");
    string OptimizerPath => Path.Combine(folder, $"{stage}.optimizer.bin");
    string StatePath => Path.Combine(folder, $"{stage}.state.json");

    public bool Exists => File.Exists(StatePath) && File.Exists(WeightsPath);

    public void Save(nn.Module model, OptimizerHelper optimizer, StageState state, IReadOnlyDictionary<string, nn.Module>? extras = null)
    {
        Directory.CreateDirectory(folder);
        SafeTensorsFile.Save(WeightsPath, model.state_dict());
        foreach (var (name, module) in extras ?? new Dictionary<string, nn.Module>())
            SafeTensorsFile.Save(ExtraPath(name), module.state_dict());
        string temp = OptimizerPath + AtomicFile.TempSuffix;
        optimizer.save_state_dict(temp);
        File.Move(temp, OptimizerPath, overwrite: true);
        AtomicFile.WriteAllText(StatePath, JsonSerializer.Serialize(state));
    }

    /// <summary>Loads the stage into <paramref name="model"/> and <paramref name="optimizer"/>; null when there is no checkpoint.</summary>
    public StageState? TryLoad(nn.Module model, OptimizerHelper optimizer, IReadOnlyDictionary<string, nn.Module>? extras = null)
    {
        if (!Exists) return null;
        var state = JsonFile.ReadExisting<StageState>(StatePath);
        StateDictLoader.LoadFile(model, WeightsPath);
        foreach (var (name, module) in extras ?? new Dictionary<string, nn.Module>())
            StateDictLoader.LoadFile(module, ExtraPath(name));
        if (File.Exists(OptimizerPath)) optimizer.load_state_dict(OptimizerPath);
        return state;
    }

    /// <summary>Loads only the weights (for a later stage that uses a finished one).</summary>
    public StageState LoadWeights(nn.Module model)
    {
        if (!Exists) throw new FileNotFoundException($"No finished '{stage}' stage in {folder}; run it first.", StatePath);
        StateDictLoader.LoadFile(model, WeightsPath);
        return JsonFile.ReadExisting<StageState>(StatePath);
    }
}
