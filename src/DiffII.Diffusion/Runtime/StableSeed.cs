namespace DiffII.Diffusion.Runtime;

/// <summary>
/// Seeds derived from a run's seed and a few numbers (a class index, a sample index, an epoch) that are the same in
/// every process and on every platform. <see cref="HashCode.Combine{T1, T2}"/> is not: .NET seeds it randomly per
/// process, so a <see cref="Random"/> seeded through it gives another run on every start.
/// </summary>
public static class StableSeed
{
    /// <summary>A non-negative <see cref="int"/> seed for <see cref="Random"/>.</summary>
    public static int Of(long seed, params long[] parts) => (int)(Hash(seed, parts) & 0x7fffffff);

    /// <summary>The 64-bit hash behind <see cref="Of"/>: each part mixed in, then SplitMix64's finaliser.</summary>
    public static ulong Hash(long seed, params long[] parts)
    {
        ulong h = unchecked((ulong)seed) + 0x9E3779B97F4A7C15UL;
        foreach (long p in parts)
        {
            h ^= unchecked((ulong)p) + 0x9E3779B97F4A7C15UL + (h << 6) + (h >> 2);
            h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9UL;
            h = (h ^ (h >> 27)) * 0x94D049BB133111EBUL;
            h ^= h >> 31;
        }
        return h;
    }
}
