using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Inversion;

/// <summary>
/// Random spherical interpolation of two DDIM inversions (paper Sec. 3.2.2, Eq. 7):
/// <c>z = [sin(θ − φ)·z1 + sin(φ)·z2] / sin θ</c>, with θ the angle between z1 and z2 and the phase φ anywhere on
/// the full circle [0, 2π): φ in [0, θ] interpolates, any other φ extrapolates along the same great circle.
/// </summary>
/// <remarks>
/// θ is computed in float64 and its cosine clamped to [−1, 1], so rounding can never produce NaN. When sin θ is
/// tiny (the two inversions are the same point, or exactly opposite) the formula has no unique circle and the
/// reference implementation divides by zero. Here the circle is then spanned by z1 and a direction orthogonal to
/// it drawn from <c>generator</c>: <c>z = cos φ·z1 + sin φ·u</c>, |u| = |z2|. That is the limit of the general
/// formula written as <c>cos φ·z1 + sin φ·(z2 − cos θ·z1)/sin θ</c> for an arbitrary orthogonal direction, and it
/// still returns z1 at φ = 0 and z2 at φ = θ (0 or π).
/// </remarks>
public static class SphericalInterpolation
{
    /// <summary>Below this sin θ the two inputs are treated as coincident or opposite (see remarks).</summary>
    public const double DegenerateSinTheta = 1e-6;

    /// <summary>The angle θ between each pair of rows (per batch element), in float64, in [0, π].</summary>
    /// <param name="z1">[B, ...] or unbatched [...] when <paramref name="batched"/> is false.</param>
    /// <param name="z2">Same shape as <paramref name="z1"/>.</param>
    /// <param name="batched">Whether the first dimension indexes independent pairs.</param>
    public static Tensor Angle(Tensor z1, Tensor z2, bool batched = true)
    {
        CheckPair(z1, z2);
        using var scope = NewDisposeScope();
        var a = Flat(z1, batched).to(ScalarType.Float64);
        var b = Flat(z2, batched).to(ScalarType.Float64);
        var cos = (a * b).sum(1) / (a.norm(1) * b.norm(1)).ClampMin(double.Epsilon);
        return scope.MoveToOuter(cos.Clamp(-1.0, 1.0).arccos());
    }

    /// <summary>Interpolates one pair at phase <paramref name="phi"/> (radians; any real value, periodic in 2π).</summary>
    public static Tensor Slerp(Tensor z1, Tensor z2, double phi, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        var result = Slerp(z1.unsqueeze(0), z2.unsqueeze(0), tensor(new[] { phi }, ScalarType.Float64), generator).squeeze(0);
        return scope.MoveToOuter(result);
    }

    /// <summary>
    /// Interpolates a batch of pairs: row i of the result lies on the great circle through z1[i] and z2[i] at phase
    /// phi[i]. The result has the dtype and device of <paramref name="z1"/>; the arithmetic runs in float64.
    /// </summary>
    /// <param name="z1">[B, ...]</param>
    /// <param name="z2">[B, ...], same shape.</param>
    /// <param name="phi">[B] phases in radians.</param>
    /// <param name="generator">Draws the orthogonal direction for degenerate pairs (see remarks); null uses the global generator.</param>
    public static Tensor Slerp(Tensor z1, Tensor z2, Tensor phi, Generator? generator = null)
    {
        CheckPair(z1, z2);
        long batch = z1.shape[0];
        if (phi.dim() != 1 || phi.shape[0] != batch)
            throw new ArgumentException($"phi must have shape [{batch}] (one phase per pair); got [{string.Join(", ", phi.shape)}].", nameof(phi));

        using var scope = NewDisposeScope();
        var a = Flat(z1, true).to(ScalarType.Float64);
        var b = Flat(z2, true).to(ScalarType.Float64);
        var p = phi.to(ScalarType.Float64, a.device).unsqueeze(1);

        var normA = a.norm(1, keepdim: true);
        var normB = b.norm(1, keepdim: true);
        var cos = ((a * b).sum(1, keepdim: true) / (normA * normB).ClampMin(double.Epsilon)).Clamp(-1.0, 1.0);
        var theta = cos.arccos();
        var sinTheta = theta.sin();
        var degenerate = sinTheta.Lt(DegenerateSinTheta);

        // General case. Divide by a safe denominator: the degenerate rows are replaced below.
        var safeSin = where(degenerate, ones_like(sinTheta), sinTheta);
        var general = ((theta - p).sin() * a).Add(p.sin() * b) / safeSin;

        Tensor result = general;
        if (degenerate.any().item<bool>())
        {
            // A direction orthogonal to z1 (Gram–Schmidt on a Gaussian draw), scaled to |z2|.
            var draw = randn(a.shape, dtype: ScalarType.Float64, device: a.device, generator: generator);
            var unitA = a / normA.ClampMin(double.Epsilon);
            var orthogonal = draw - (draw * unitA).sum(1, keepdim: true) * unitA;
            var u = orthogonal / orthogonal.norm(1, keepdim: true).ClampMin(double.Epsilon) * normB;
            var circle = (p.cos() * a).Add(p.sin() * u);
            result = where(degenerate, circle, general);
        }
        return scope.MoveToOuter(result.reshape(z1.shape).to(z1.dtype));
    }

    /// <summary>A phase uniform on the full circle [0, 2π), as the official code draws it.</summary>
    public static double SamplePhase(Random random) => random.NextDouble() * 2 * Math.PI;

    static Tensor Flat(Tensor z, bool batched) => batched ? z.reshape(z.shape[0], -1) : z.reshape(1, -1);

    static void CheckPair(Tensor z1, Tensor z2)
    {
        if (!z1.shape.SequenceEqual(z2.shape))
            throw new ArgumentException($"The two inversions must have the same shape; got [{string.Join(", ", z1.shape)}] and [{string.Join(", ", z2.shape)}].");
        if (z1.dim() < 1) throw new ArgumentException("Inversions must have at least one dimension.");
    }
}
