using System.Text.Json;
using DiffII.Augmentation;
using DiffII.Cli.Commands;
using DiffII.Diffusion.Pipelines;
using DiffII.Imaging;
using DiffII.Storage;

namespace DiffII.Cli;

/// <summary>
/// Everything a command can check from its options, the model's config and the folders before its first step (and
/// before it writes anything): a refusal after an hour of concept learning is a defect, and so is a refused run
/// that leaves files behind.
/// </summary>
public static class UpFrontChecks
{
    /// <summary>A work folder must be a folder, or not exist yet (it is then created).</summary>
    public static void WorkFolder(string work, string option = "--work")
    {
        var kind = FileKind.Of(work);
        if (kind is not (FileKindValue.Missing or FileKindValue.Directory))
            throw new CliException($"{option} {work} is {FileKind.Describe(kind)}, not a folder; pass a folder path (it is created when missing).");
        for (string? parent = Path.GetDirectoryName(work); parent is not null; parent = Path.GetDirectoryName(parent))
        {
            var parentKind = FileKind.Of(parent);
            if (parentKind == FileKindValue.Missing) continue;
            if (parentKind != FileKindValue.Directory)
                throw new CliException($"{option} {work} cannot be created: {parent} is {FileKind.Describe(parentKind)}, not a folder.");
            break;
        }
    }

    /// <summary>The temporary folder (TMPDIR) must be writable; libraries write scratch files there mid-run.</summary>
    public static void TempFolder()
    {
        string tmp = Path.GetTempPath();
        try
        {
            string probe = Path.Combine(tmp, $"diffii-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"The temporary folder {tmp} (TMPDIR) is not writable ({e.Message}); set TMPDIR to a writable folder, e.g. TMPDIR=$HOME/tmp.");
        }
    }

    /// <summary>A work folder inside the image folder would have its synthetic PNGs read back as training images.</summary>
    public static void WorkOutsideImages(string work, RunSettings settings)
    {
        if (settings.Images is not string images || !Directory.Exists(images)) return;
        string realWork = ImageFolderWalker.RealPath(work), realImages = ImageFolderWalker.RealPath(images);
        if (ImageFolderWalker.IsWithin(realWork, realImages))
            throw new CliException($"The work folder {work} is inside the image folder {images}: its synthetic images would be read back as training images. Use a work folder outside {images}.");
    }

    /// <summary>The option ranges that need neither the images nor the model (saved settings included).</summary>
    public static void Options(RunSettings merged, string work) => Throw(OptionLimits.Problems(Placeholder(merged, work).Options(["-"])));

    /// <summary>float16 on the CPU learns NaN losses: refused before the model is loaded.</summary>
    public static void DType(string device, string dtype)
    {
        var d = ModelLocator.ParseDevice(device);
        try { RunChecks.CheckDType(ModelLocator.ParseDType(dtype), d.type); }
        catch (ArgumentException e) { throw new CliException($"--dtype {dtype} on --device {device}: {e.Message}"); }
    }

    /// <summary>The checks that need the model's config and the images: steps against its timesteps, the plan's size.</summary>
    public static void AgainstModelAndImages(ResolvedRun run)
    {
        Throw(OptionLimits.Problems(run.Options(["-"]), NumTrainTimesteps(run.ModelPath)));
        try { OptionLimits.CheckPlanSize(run.Budget, run.Images.Classes.Select(c => run.Images.Items.Count(i => i.Label == c))); }
        catch (ArgumentOutOfRangeException e) { throw new CliException(e.Message.Split(" (Parameter")[0]); }
    }

    /// <summary>The model's num_train_timesteps from a diffusers folder's scheduler config, without loading the model (null when unknown).</summary>
    public static int? NumTrainTimesteps(string modelPath)
    {
        string config = Path.Combine(modelPath, "scheduler", "scheduler_config.json");
        if (!File.Exists(config)) return null;
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(config));
            return json.RootElement.TryGetProperty("num_train_timesteps", out var t) && t.TryGetInt32(out int n) && n > 0 ? n : null;
        }
        catch (JsonException) { return null; } // the model loader names a damaged config
    }

    static ResolvedRun Placeholder(RunSettings merged, string work) => ResolvedRun.From(merged, work, null!, "");

    static void Throw(IReadOnlyList<string> problems)
    {
        if (problems.Count > 0) throw new CliException(string.Join(" ", problems));
    }
}
