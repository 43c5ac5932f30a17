using DiffII.Diffusion.Runtime;

namespace DiffII.Diffusion.Tests;

public class CpuBFloat16SupportTests
{
    static string CpuInfo(string flags) =>
        $"processor\t: 0\nvendor_id\t: Test\nmodel name\t: Test CPU\nflags\t\t: {flags}\nbugs\t\t: none\n\nprocessor\t: 1\nflags\t\t: {flags}\n";

    [Fact]
    public void AmdZen4Flags_HaveAvx512BFloat16ButNoAmx()
    {
        var support = CpuBFloat16Support.FromCpuInfo(CpuInfo("fpu sse2 avx2 avx512f avx512bw avx512vl avx_vnni avx512_bf16 avx512_vnni"));
        Assert.Equal(new CpuBFloat16Support(true, true, false, "/proc/cpuinfo"), support);
        Assert.True(support.Native);
        Assert.Equal("AVX512-BF16 (no AMX)", support.Summary);
    }

    [Fact]
    public void SapphireRapidsFlags_HaveAmxAndAvx512BFloat16()
    {
        var support = CpuBFloat16Support.FromCpuInfo(CpuInfo("avx2 avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8"));
        Assert.True(support.AmxBFloat16 && support.Avx512BFloat16 && support.Native);
        Assert.Equal("AMX-BF16 and AVX512-BF16", support.Summary);
    }

    [Theory]
    [InlineData("sse2 avx avx2 fma", false, "no native bf16 (no AVX-512: bf16 runs reference code)")]
    [InlineData("avx2 avx512f avx512bw avx512_vnni", true, "no native bf16 (AVX-512 only: bf16 is emulated)")]
    public void WithoutBFloat16Flags_IsNotNative(string flags, bool avx512, string summary)
    {
        var support = CpuBFloat16Support.FromCpuInfo(CpuInfo(flags));
        Assert.False(support.Native);
        Assert.Equal(avx512, support.Avx512);
        Assert.Equal(summary, support.Summary);
    }

    [Fact]
    public void FlagNamesMustMatchWholeWords()
    {
        // "amx_bf16" without "amx_tile" cannot run tiles; "avx512_bf16x" is not the flag.
        var support = CpuBFloat16Support.FromCpuInfo(CpuInfo("avx512f avx512_bf16x amx_bf16"));
        Assert.False(support.Avx512BFloat16);
        Assert.False(support.AmxBFloat16);
    }

    [Fact]
    public void WithoutAFlagsLine_SaysTheExtensionsAreUnknown()
    {
        var support = CpuBFloat16Support.FromCpuInfo("processor\t: 0\nFeatures\t: fp asimd bf16\n", "cpuinfo.txt");
        Assert.False(support.Native);
        Assert.Contains("cpuinfo.txt has no flags line", support.Source);
    }

    [Fact]
    public void Detect_OnLinux_ReadsThisMachinesFlags()
    {
        if (!File.Exists("/proc/cpuinfo")) return;
        string text = File.ReadAllText("/proc/cpuinfo");
        var support = CpuBFloat16Support.Detect();
        Assert.Equal(CpuBFloat16Support.FromCpuInfo(text), support);
        bool listed = text.Split('\n').Any(l => l.StartsWith("flags", StringComparison.Ordinal) && l.Split(' ').Contains("avx512_bf16"));
        Assert.Equal(listed, support.Avx512BFloat16);
    }
}
