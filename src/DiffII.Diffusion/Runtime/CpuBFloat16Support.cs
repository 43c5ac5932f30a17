using System.Runtime.Intrinsics.X86;

namespace DiffII.Diffusion.Runtime;

/// <summary>
/// What the CPU offers for bfloat16 arithmetic, read at run time. libtorch's CPU bf16 convolutions and matrix
/// products go through oneDNN, which uses AMX tiles (<c>amx_bf16</c>, Intel Sapphire Rapids and later) or the
/// AVX-512 dot-product instruction (<c>avx512_bf16</c>, Intel Cooper Lake+, AMD Zen 4+) when present, emulates bf16 on
/// plain AVX-512, and otherwise falls back to slow reference code. Without one of the first two, bf16 on the CPU
/// saves memory but not time.
/// </summary>
/// <param name="Avx512">AVX-512 foundation (<c>avx512f</c>).</param>
/// <param name="Avx512BFloat16">The AVX-512 bf16 dot-product instructions (<c>avx512_bf16</c>).</param>
/// <param name="AmxBFloat16">AMX tiles with bf16 (<c>amx_bf16</c> and <c>amx_tile</c>).</param>
/// <param name="Source">Where the flags were read: "/proc/cpuinfo", or why they are unknown.</param>
public sealed record CpuBFloat16Support(bool Avx512, bool Avx512BFloat16, bool AmxBFloat16, string Source)
{
    const string CpuInfoPath = "/proc/cpuinfo";

    /// <summary>True when the CPU has native bf16 instructions (AVX512-BF16 or AMX-BF16).</summary>
    public bool Native => Avx512BFloat16 || AmxBFloat16;

    /// <summary>One line for people, e.g. "AVX512-BF16 (no AMX)".</summary>
    public string Summary =>
        AmxBFloat16 && Avx512BFloat16 ? "AMX-BF16 and AVX512-BF16"
        : AmxBFloat16 ? "AMX-BF16"
        : Avx512BFloat16 ? "AVX512-BF16 (no AMX)"
        : Avx512 ? "no native bf16 (AVX-512 only: bf16 is emulated)"
        : "no native bf16 (no AVX-512: bf16 runs reference code)";

    /// <summary>Reads the flags of this machine's CPU (Linux), or the instruction sets .NET reports elsewhere.</summary>
    public static CpuBFloat16Support Detect()
    {
        if (File.Exists(CpuInfoPath))
        {
            try { return FromCpuInfo(File.ReadAllText(CpuInfoPath), CpuInfoPath); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        // .NET names AVX-512F but not the bf16 extensions; say so rather than guess.
        return new CpuBFloat16Support(Avx512F.IsSupported, false, false, $"{CpuInfoPath} unreadable: bf16 extensions unknown");
    }

    /// <summary>Reads the first "flags" line of a /proc/cpuinfo text (every core lists the same flags).</summary>
    public static CpuBFloat16Support FromCpuInfo(string cpuInfo, string source = CpuInfoPath)
    {
        foreach (var line in cpuInfo.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon < 0 || line[..colon].Trim() != "flags") continue;
            var flags = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
            return new CpuBFloat16Support(
                flags.Contains("avx512f"), flags.Contains("avx512_bf16"), flags.Contains("amx_bf16") && flags.Contains("amx_tile"), source);
        }
        return new CpuBFloat16Support(false, false, false, $"{source} has no flags line: bf16 extensions unknown");
    }
}
