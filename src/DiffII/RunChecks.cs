using DiffII.Augmentation;
using DiffII.Diffusion.Pipelines;
using TorchSharp;

namespace DiffII;

/// <summary>
/// What the augmenter checks before any work, from the options and the model alone (so a bad value is refused in
/// seconds, not after an hour of concept learning).
/// </summary>
public static class RunChecks
{
    /// <summary>The option ranges against the model's scheduler, and the model's dtype against its device.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option out of range (the message names each).</exception>
    /// <exception cref="ArgumentException">float16 weights on the CPU.</exception>
    public static void BeforeWork(StableDiffusion model, AugmentationOptions options)
    {
        OptionLimits.Check(options, model.SchedulerConfig.NumTrainTimesteps);
        CheckDType(model.DType, model.Device.type);
    }

    /// <summary>
    /// The suffixes that make a prompt longer than the text encoder reads (CLIP: 77 tokens): the rest is cut off, as
    /// diffusers cuts it (with a warning). Not an error: the prompt still works, but the suffix's end says nothing.
    /// </summary>
    /// <returns>One warning per such suffix, naming it and the prompt's length.</returns>
    public static IReadOnlyList<string> LongSuffixes(StableDiffusion model, AugmentationOptions options)
    {
        if (!options.Strategy.UsesSuffixes() || options.SplitRatio <= 0) return [];
        int limit = model.Tokenizer.ModelMaxLength;
        var warnings = new List<string>();
        foreach (var suffix in options.Suffixes.Distinct(StringComparer.Ordinal))
        {
            // The class's placeholder is one token; "object" stands in for it here.
            int tokens = model.Tokenizer.Encode($"a photo of a object {options.Metaclass} {suffix}", addSpecialTokens: true, truncate: false).Count;
            if (tokens > limit)
                warnings.Add($"the suffix \"{(suffix.Length > 60 ? suffix[..60] + "…" : suffix)}\" makes a prompt of {tokens} tokens; the text encoder reads {limit}, so everything after is cut off. Shorten it.");
        }
        return warnings;
    }

    /// <summary>
    /// float16 on the CPU: libtorch's CPU kernels overflow in half precision, so learning gives NaN losses from the
    /// first steps. Refused up front; bfloat16 keeps float32's range and works on the CPU.
    /// </summary>
    public static void CheckDType(torch.ScalarType dtype, DeviceType device)
    {
        if (dtype == torch.ScalarType.Float16 && device == DeviceType.CPU)
            throw new ArgumentException("float16 weights on the CPU learn NaN losses (half precision overflows in the CPU kernels); use float32 (the CPU default) or bfloat16 on the CPU, or float16 on a GPU (--device cuda).");
    }
}
