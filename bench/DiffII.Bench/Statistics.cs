namespace DiffII.Bench;

/// <summary>A least-squares line y = Intercept + Slope·x and how well it explains the points.</summary>
public sealed record LinearFit(double Slope, double Intercept, double RSquared, int Points)
{
    public double Predict(double x) => Intercept + Slope * x;
}

/// <summary>The few statistics a benchmark needs: median, minimum, least-squares line.</summary>
public static class Statistics
{
    /// <summary>The median (mean of the two middle values for an even count).</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("The median of no values is undefined.", nameof(values));
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>
    /// Ordinary least squares of y on x. R² is 1 − SS_res/SS_tot; when every y is equal (SS_tot = 0) a line
    /// through them explains them exactly, so R² is 1 if the residuals are 0.
    /// </summary>
    public static LinearFit Fit(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count) throw new ArgumentException($"x has {x.Count} values but y has {y.Count}.");
        if (x.Count < 2) throw new ArgumentException("A line needs at least two points.");
        double mx = x.Average(), my = y.Average();
        double sxx = 0, sxy = 0, syy = 0;
        for (int i = 0; i < x.Count; i++)
        {
            sxx += (x[i] - mx) * (x[i] - mx);
            sxy += (x[i] - mx) * (y[i] - my);
            syy += (y[i] - my) * (y[i] - my);
        }
        if (sxx == 0) throw new ArgumentException("All x values are equal: no line can be fitted.");
        double slope = sxy / sxx;
        double intercept = my - slope * mx;
        double ssRes = 0;
        for (int i = 0; i < x.Count; i++)
        {
            double r = y[i] - (intercept + slope * x[i]);
            ssRes += r * r;
        }
        double r2 = syy == 0 ? (ssRes == 0 ? 1 : 0) : 1 - ssRes / syy;
        return new LinearFit(slope, intercept, r2, x.Count);
    }
}
