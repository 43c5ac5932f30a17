using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Models;

// Builds nn.Conv2d, whose initialisation draws from the global generator, so it must not run beside tests that seed it.
[Collection(nameof(GlobalRngCollection))]
public class Conv2dForwardTests
{
    /// <summary>A bf16 conv with weights and input drawn from <paramref name="seed"/>'s own generator.</summary>
    static (Conv2d Conv, Tensor Input) BFloat16Conv(int inChannels, int outChannels, int kernel, int stride, int size, int seed)
    {
        using var generator = new Generator((ulong)seed);
        var conv = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: kernel / 2, dtype: ScalarType.BFloat16);
        using (no_grad())
        {
            conv.weight!.copy_(randn(conv.weight.shape, generator: generator).Div(Math.Sqrt(inChannels * kernel * kernel)));
            conv.bias!.copy_(randn(outChannels, generator: generator).Mul(0.1));
        }
        return (conv, randn(2, inChannels, size, size, generator: generator).to(ScalarType.BFloat16));
    }

    /// <summary>The same conv in float32 on the very bf16 values: what a correct bf16 kernel returns before its final rounding.</summary>
    static Tensor Float32Reference(Conv2d conv, Tensor input) => nn.functional.conv2d(
        input.to(ScalarType.Float32), conv.weight!.to(ScalarType.Float32), conv.bias!.to(ScalarType.Float32),
        strides: conv.stride, padding: conv.padding);

    // Channel counts of the models' conv_out layers (4, 8, 3), other non-multiples of 16, multiples of 16 (which go to
    // libtorch's own bf16 kernel, so this also pins that the kernel is right for them), 1×1 and stride 2.
    [Theory]
    [InlineData(64, 4, 3, 1, 16)]
    [InlineData(64, 8, 3, 1, 16)]
    [InlineData(32, 3, 3, 1, 16)]
    [InlineData(16, 17, 3, 1, 8)]
    [InlineData(32, 24, 3, 2, 16)]
    [InlineData(32, 4, 1, 1, 8)]
    [InlineData(32, 16, 3, 1, 16)]
    [InlineData(64, 32, 3, 1, 8)]
    [InlineData(32, 64, 3, 2, 16)]
    public void InBFloat16OnCpu_IsTheFloat32ConvRoundedOnce(int inChannels, int outChannels, int kernel, int stride, int size)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (conv, input) = BFloat16Conv(inChannels, outChannels, kernel, stride, size, seed: inChannels * 100 + outChannels);
        using var module = conv;
        var output = conv.Forward(input);
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        var reference = Float32Reference(conv, input);
        var error = (output.to(ScalarType.Float32) - reference).abs();
        double scale = reference.abs().max().item<float>();
        double raw = (conv.call(input).to(ScalarType.Float32) - reference).abs().max().item<float>();
        Console.WriteLine($"bf16 conv {inChannels}->{outChannels} k{kernel} s{stride}: max error {error.max().item<float>() / scale:G3} of the range " +
                          $"(libtorch's own kernel: {raw / scale:G3})");
        // One bf16 rounding of a float32-accumulated result: at most half an ulp, 2^-9 of the value. Allow one ulp
        // (2^-8) for the kernel's own summation order, plus 1e-3 of the range for outputs near zero. The faulty
        // kernel is off by 0.1-0.6 of the range.
        var allowed = reference.abs().Mul(Math.Pow(2, -8)).Add(1e-3 * scale);
        Assert.True(error.le(allowed).all().item<bool>(),
            $"bf16 conv {inChannels}->{outChannels} k{kernel} s{stride} differs from float32 by up to {error.max().item<float>()} (range {scale})");
    }

    [Fact]
    public void RunsInFloat32_OnlyForCpuBFloat16WithOutputChannelsOutsideTheKernelsBlock()
    {
        using var scope = NewDisposeScope();
        using var toFour = nn.Conv2d(8, 4, 3, padding: 1, dtype: ScalarType.BFloat16);
        using var toSixteen = nn.Conv2d(8, 16, 3, padding: 1, dtype: ScalarType.BFloat16);
        var bf16 = zeros(1, 8, 4, 4, dtype: ScalarType.BFloat16);
        Assert.True(Conv2dForward.RunsInFloat32(toFour, bf16));
        Assert.False(Conv2dForward.RunsInFloat32(toSixteen, bf16));
        Assert.False(Conv2dForward.RunsInFloat32(toFour, zeros(1, 8, 4, 4)));
        Assert.False(Conv2dForward.RunsInFloat32(toFour, zeros(1, 8, 4, 4, dtype: ScalarType.Float16)));
    }

    [Fact]
    public void InFloat32_IsTheModulesOwnCall()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var conv = nn.Conv2d(8, 4, 3, padding: 1);
        using var generator1 = new Generator(7);
        var input = randn(1, 8, 6, 6, generator: generator1);
        Assert.True(conv.Forward(input).eq(conv.call(input)).all().item<bool>());
    }
}
