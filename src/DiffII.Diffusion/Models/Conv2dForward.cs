using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Models;

/// <summary>
/// Runs the engine's <see cref="Conv2d"/> layers, routing around a wrong CPU bfloat16 convolution in libtorch.
/// </summary>
/// <remarks>
/// libtorch 2.10 (TorchSharp 0.107) runs a CPU bfloat16 convolution through oneDNN 3.7.1's <c>jit_bf16</c> kernel
/// (<c>jit_bf16:avx512_core_bf16</c> on CPUs with AVX512-BF16, <c>jit_bf16:avx512_core</c> on plain AVX-512). When
/// the output channel count is not a multiple of 16, that kernel returns outputs off by 10–60 % of the output's range
/// (measured on an AMD EPYC with avx512_bf16: 64→4 channels, 3×3, rel. error 0.28; multiples of 16 stay at 0.002,
/// the size of one bf16 rounding). Every diffusion model has such a layer where it leaves the feature space:
/// the U-Net's conv_out (→ 4 latent channels), the VAE encoder's conv_out (→ 8 moments) and decoder's (→ 3 colours).
/// Those few convolutions run in float32 on the bf16-rounded input and weights and are rounded back to bf16, which is
/// what a correct bf16 kernel (float32 accumulation) returns; they are a small share of the model's arithmetic.
/// Hosts without AVX-512 never reach that kernel, and the float32 route is exact there too, so the rule does not
/// depend on the CPU. Measured on the same host and kept correct by libtorch: output channels in multiples of 16 (any
/// input channels, stride 1 or 2), linear, matmul, group/layer norm and SDPA in bf16. 1×1 convs use another oneDNN kernel
/// that is right, but are rerouted too when their channel count is off the block, as the cost is nil. Forward hooks of a rerouted conv do not fire (bench FLOP counts in bf16 omit those layers).
/// </remarks>
public static class Conv2dForward
{
    /// <summary>The output-channel block of oneDNN's AVX-512 bf16 convolution; other counts take its faulty tail path.</summary>
    public const long SafeOutputChannelMultiple = 16;

    /// <summary>True when <paramref name="conv"/> on <paramref name="input"/> would hit the faulty CPU bf16 kernel.</summary>
    public static bool RunsInFloat32(Conv2d conv, Tensor input) =>
        input.dtype == ScalarType.BFloat16 && input.device_type == DeviceType.CPU
        && conv.out_channels % SafeOutputChannelMultiple != 0 && conv.padding_mode == PaddingModes.Zeros;

    /// <summary><c>conv.call(input)</c>, except that a CPU bf16 conv with a faulty channel count runs in float32.</summary>
    public static Tensor Forward(this Conv2d conv, Tensor input)
    {
        if (!RunsInFloat32(conv, input)) return conv.call(input);
        using var scope = NewDisposeScope();
        var output = nn.functional.conv2d(
            input.to(ScalarType.Float32), conv.weight!.to(ScalarType.Float32), conv.bias?.to(ScalarType.Float32),
            strides: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups);
        return output.to(input.dtype).MoveToOuterDisposeScope();
    }
}
