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
    /// float16 on the CPU: libtorch's CPU kernels overflow in half precision, so learning gives NaN losses from the
    /// first steps. Refused up front; bfloat16 keeps float32's range and works on the CPU.
    /// </summary>
    public static void CheckDType(torch.ScalarType dtype, DeviceType device)
    {
        if (dtype == torch.ScalarType.Float16 && device == DeviceType.CPU)
            throw new ArgumentException("float16 weights on the CPU learn NaN losses (half precision overflows in the CPU kernels); use float32 (the CPU default) or bfloat16 on the CPU, or float16 on a GPU (--device cuda).");
    }
}
