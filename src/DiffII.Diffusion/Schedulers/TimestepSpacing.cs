namespace DiffII.Diffusion.Schedulers;

/// <summary>
/// The inference timesteps of diffusers' DDIM schedulers' <c>set_timesteps</c>, reproducing numpy's arithmetic
/// (float arange, linspace, round-half-to-even) so every spacing gives diffusers' exact integers.
/// </summary>
internal static class TimestepSpacing
{
    /// <summary>DDIMScheduler: descending timesteps.</summary>
    public static long[] Descending(DDIMSchedulerConfig config, int steps)
    {
        int total = config.NumTrainTimesteps;
        switch (config.TimestepSpacing)
        {
            case DDIMSchedulerConfig.Linspace:
                return Linspace(0, total - 1, steps).Select(RoundHalfEven).Reverse().ToArray();
            case DDIMSchedulerConfig.Leading:
            {
                long ratio = total / steps;
                return Enumerable.Range(0, steps).Select(i => i * ratio + config.StepsOffset).Reverse().ToArray();
            }
            case DDIMSchedulerConfig.Trailing:
                return Arange(total, 0, -(double)total / steps).Select(v => RoundHalfEven(v) - 1).ToArray();
            default:
                throw new InvalidDataException($"scheduler config: 'timestep_spacing' '{config.TimestepSpacing}' is not supported.");
        }
    }

    /// <summary>DDIMInverseScheduler: ascending timesteps; it knows no linspace spacing.</summary>
    public static long[] Ascending(DDIMSchedulerConfig config, int steps)
    {
        int total = config.NumTrainTimesteps;
        switch (config.TimestepSpacing)
        {
            case DDIMSchedulerConfig.Leading:
            {
                long ratio = total / steps;
                return Enumerable.Range(0, steps).Select(i => i * ratio + config.StepsOffset).ToArray();
            }
            case DDIMSchedulerConfig.Trailing:
                return Arange(total, 0, -(double)total / steps).Reverse().Select(v => RoundHalfEven(v) - 1).ToArray();
            default:
                throw new InvalidDataException(
                    $"scheduler config: 'timestep_spacing' is '{config.TimestepSpacing}', but DDIMInverseScheduler supports only leading and trailing.");
        }
    }

    /// <summary>
    /// numpy.arange for floats: length ceil((stop - start) / step), element i = start + i·(first step as stored),
    /// which is why arange(1000, 0, -1000/61) has 62 elements, the last one about −6e-13.
    /// </summary>
    internal static double[] Arange(double start, double stop, double step)
    {
        long length = Math.Max(0, (long)Math.Ceiling((stop - start) / step));
        var values = new double[length];
        if (length == 0) return values;
        values[0] = start;
        if (length == 1) return values;
        values[1] = start + step;
        double delta = values[1] - values[0];
        for (long i = 2; i < length; i++) values[i] = start + i * delta;
        return values;
    }

    /// <summary>numpy.linspace with endpoint: start + i·((stop - start)/(n - 1)), the last element exactly stop.</summary>
    internal static double[] Linspace(double start, double stop, int count)
    {
        var values = new double[count];
        if (count == 0) return values;
        if (count == 1) { values[0] = start; return values; }
        double step = (stop - start) / (count - 1);
        for (int i = 0; i < count; i++) values[i] = i * step + start;
        values[^1] = stop;
        return values;
    }

    /// <summary>numpy.round: halves go to the even neighbour.</summary>
    internal static long RoundHalfEven(double value) => (long)Math.Round(value, MidpointRounding.ToEven);
}
