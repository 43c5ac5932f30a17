using System.Runtime.InteropServices;

namespace DiffII.Diffusion.Runtime;

/// <summary>
/// Turns libtorch's NNPACK convolution path off, as PyTorch's <c>torch.backends.nnpack.set_flags(False)</c> does.
/// </summary>
/// <remarks>
/// Why: libtorch tries NNPACK for every float32 CPU convolution with a batch of 16 or more, and on hosts NNPACK does
/// not support (seen on AMD EPYC) each try prints "Could not initialize NNPACK! Reason: Unsupported hardware." to
/// stderr, some 1 300 lines in one tiny experiment. Where NNPACK does work it would make convolutions take a different
/// kernel than on the other hosts, so turning it off everywhere also keeps results the same across hosts. TorchSharp
/// has no switch for it, so this calls libtorch's own <c>at::globalContext().setUserEnabledNNPACK(false)</c> by its
/// exported (Itanium-mangled) names; where they are absent (Windows, another libtorch) nothing changes.
/// </remarks>
internal static class NnpackSwitch
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate IntPtr GlobalContextFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate void SetEnabledFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    delegate bool GetEnabledFn(IntPtr context);

    /// <summary>Disables NNPACK; returns false when libtorch's switch could not be found (then nothing changed).</summary>
    internal static bool TryDisable()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return false;
        if (!TryResolve(out var context, out var set, out _)) return false;
        set(context, false);
        return true;
    }

    /// <summary>Whether libtorch will try NNPACK (null when its switch could not be found).</summary>
    internal static bool? IsEnabled() =>
        RuntimeInformation.IsOSPlatform(OSPlatform.Linux) && TryResolve(out var context, out _, out var get) ? get(context) : null;

    static bool TryResolve(out IntPtr context, out SetEnabledFn set, out GetEnabledFn get)
    {
        context = IntPtr.Zero;
        set = null!;
        get = null!;
        // libtorch_cpu is already in the process once TorchSharp has initialised; loading it again by name returns it.
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", typeof(NnpackSwitch).Assembly, null, out var lib)) return false;
        if (!NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out var globalContext)
            || !NativeLibrary.TryGetExport(lib, "_ZN2at7Context20setUserEnabledNNPACKEb", out var setEnabled)
            || !NativeLibrary.TryGetExport(lib, "_ZNK2at7Context17userEnabledNNPACKEv", out var getEnabled))
            return false;
        context = Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(globalContext)();
        set = Marshal.GetDelegateForFunctionPointer<SetEnabledFn>(setEnabled);
        get = Marshal.GetDelegateForFunctionPointer<GetEnabledFn>(getEnabled);
        return context != IntPtr.Zero;
    }
}
