using System.Globalization;

namespace DiffII.Reporting;

/// <summary>An axis range that starts and ends on ticks spaced 1, 2, 2.5 or 5 × 10^k apart.</summary>
public sealed record NiceScale(double Min, double Max, double Step)
{
    /// <summary>Digits after the decimal point that show every tick exactly.</summary>
    public int Decimals
    {
        get
        {
            // 2.5 × 10^k needs one more digit than the power alone.
            int d = Math.Max(0, -(int)Math.Floor(Math.Log10(Step) + 1e-9));
            double scaled = Step * Math.Pow(10, d);
            if (Math.Abs(scaled - Math.Round(scaled)) > 1e-6) d++;
            return d;
        }
    }

    public IReadOnlyList<double> Ticks
    {
        get
        {
            int n = (int)Math.Round((Max - Min) / Step);
            var ticks = new double[n + 1];
            for (int i = 0; i <= n; i++) ticks[i] = Math.Round(Min + i * Step, Decimals + 2) + 0.0; // + 0.0 turns −0 into 0
            return ticks;
        }
    }

    public string Format(double value) => (Math.Round(value, Decimals) + 0.0).ToString("F" + Decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>A scale covering [<paramref name="low"/>, <paramref name="high"/>] with about <paramref name="targetTicks"/> ticks.</summary>
    public static NiceScale Covering(double low, double high, int targetTicks = 6)
    {
        if (!double.IsFinite(low) || !double.IsFinite(high))
            throw new ArgumentException($"An axis range must be finite; got [{low}, {high}].");
        if (targetTicks < 2) throw new ArgumentOutOfRangeException(nameof(targetTicks), targetTicks, "An axis needs at least two ticks.");
        if (low > high) (low, high) = (high, low);
        if (high - low < 1e-12 * Math.Max(1, Math.Abs(high)))
        {
            double pad = low == 0 ? 1 : Math.Abs(low) * 0.1;
            low -= pad;
            high += pad;
        }
        double step = NiceStep((high - low) / (targetTicks - 1));
        double min = Math.Floor(low / step + 1e-9) * step;
        double max = Math.Ceiling(high / step - 1e-9) * step;
        return new NiceScale(min, max, step);
    }

    static double NiceStep(double rough)
    {
        double power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        double fraction = rough / power;
        double nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
        return nice * power;
    }
}
