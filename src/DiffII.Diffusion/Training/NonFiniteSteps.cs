namespace DiffII.Diffusion.Training;

/// <summary>
/// The training loops' rule for a step whose loss or gradient norm is not finite: try it again on the same batch,
/// before any update (one NaN gradient, clipped, turns every weight NaN), and stop when it stays non-finite after
/// <see cref="MaxRetries"/> more tries, which is divergence rather than a one-off.
/// </summary>
/// <param name="stop">The exception to stop with: the 1-based step and the non-finite value (the loss, else the norm).</param>
public sealed class NonFiniteSteps(Func<int, double, Exception> stop)
{
    public const int MaxRetries = 3;
    int _tries;

    /// <summary>Steps that needed a retry (each counted once, however many tries it took).</summary>
    public int RetriedSteps { get; private set; }

    /// <summary>
    /// True when this loss and norm will make <see cref="Retry"/> stop the run: the moment to record what went wrong
    /// (for instance with <see cref="NonFiniteTrace"/>), while the step's weights and gradients are still there.
    /// </summary>
    public bool Stops(double loss, double gradientNorm) =>
        !(double.IsFinite(loss) && double.IsFinite(gradientNorm)) && _tries >= MaxRetries;

    /// <summary>True when step <paramref name="step"/> (0-based) is to be tried again; throws when it has been tried enough.</summary>
    public bool Retry(int step, double loss, double gradientNorm)
    {
        if (double.IsFinite(loss) && double.IsFinite(gradientNorm))
        {
            _tries = 0;
            return false;
        }
        if (++_tries > MaxRetries) throw stop(step + 1, double.IsFinite(loss) ? gradientNorm : loss);
        if (_tries == 1) RetriedSteps++;
        return true;
    }
}
