using DiffII.Diffusion.Runtime;
using DiffII.Inversion;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Tests.Inversion;

public class SphericalInterpolationTests
{
    static (Tensor, Tensor) EqualNormPair(long seed, long dim = 256)
    {
        using var g = new Generator((ulong)seed);
        var z1 = randn(dim, generator: g);
        var z2 = randn(dim, generator: g);
        z2 = z2 / z2.norm() * z1.norm();
        return (z1, z2);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(1.7)]
    [InlineData(3.5)]
    [InlineData(6.2)]
    public void KeepsTheNorm_WhenBothInputsHaveTheSameNorm(double phi)
    {
        var (z1, z2) = EqualNormPair(1);
        var z = SphericalInterpolation.Slerp(z1, z2, phi);
        Assert.Equal(z1.norm().item<float>(), z.norm().item<float>(), 3);
    }

    [Fact]
    public void ReturnsZ1AtPhaseZero_AndZ2AtPhaseTheta()
    {
        var (z1, z2) = EqualNormPair(2);
        double theta = SphericalInterpolation.Angle(z1, z2, batched: false).item<double>();
        Assert.InRange(theta, 0.5, 2.5); // random high-dimensional vectors are nearly orthogonal
        Assert.True(allclose(SphericalInterpolation.Slerp(z1, z2, 0.0), z1, rtol: 1e-5, atol: 1e-5));
        Assert.True(allclose(SphericalInterpolation.Slerp(z1, z2, theta), z2, rtol: 1e-5, atol: 1e-5));
        // Unequal norms: the end points are still hit exactly.
        var z3 = z2.Mul(1.5);
        Assert.True(allclose(SphericalInterpolation.Slerp(z1, z3, theta), z3, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void PhaseBeyondTheta_Extrapolates_AlongTheSameCircle()
    {
        var (z1, z2) = EqualNormPair(3);
        double theta = SphericalInterpolation.Angle(z1, z2, batched: false).item<double>();
        var beyond = SphericalInterpolation.Slerp(z1, z2, theta + 0.4);
        // Angle from z1 is θ + 0.4 (mod the circle), and the point stays in span(z1, z2).
        Assert.Equal(theta + 0.4, SphericalInterpolation.Angle(z1, beyond, batched: false).item<double>(), 4);
        var basis = stack([z1, z2], 1).to(ScalarType.Float64);
        var coeffs = linalg.lstsq(basis, beyond.to(ScalarType.Float64).unsqueeze(1)).Solution;
        var residual = (basis.matmul(coeffs).squeeze(1) - beyond.to(ScalarType.Float64)).norm().item<double>();
        Assert.True(residual < 1e-3, $"residual {residual}");
    }

    [Theory]
    [InlineData("identical")]
    [InlineData("opposite")]
    [InlineData("near-identical")]
    [InlineData("near-opposite")]
    public void IsFinite_ForDegenerateAndNearDegeneratePairs(string kind)
    {
        var (z1, other) = EqualNormPair(4);
        var z2 = kind switch
        {
            "identical" => z1.clone(),
            "opposite" => -z1,
            "near-identical" => z1.Add(other.Mul(1e-7f)),
            _ => (-z1).Add(other.Mul(1e-7f)),
        };
        var phis = tensor(new[] { 0.0, 0.5, Math.PI / 2, Math.PI, 4.0, 2 * Math.PI - 1e-3 });
        using var generator1 = new Generator(9);
        var batch = SphericalInterpolation.Slerp(z1.expand(6, -1), z2.expand(6, -1), phis, generator1);
        Assert.False(batch.isnan().any().item<bool>() || batch.isinf().any().item<bool>(), $"{kind}: non-finite values");
        // Every point stays on the sphere of radius |z1| and φ = 0 gives z1 back.
        var norms = batch.norm(1);
        Assert.True(allclose(norms, ones_like(norms).Mul(z1.norm().item<float>()), rtol: 1e-4), $"{kind}: norms {norms.str()}");
        Assert.True(allclose(batch[0], z1, atol: 1e-4));
        if (kind == "opposite") Assert.True(allclose(batch[3], z2, atol: 1e-4), "φ = π reaches the opposite point");
    }

    [Fact]
    public void DegenerateCase_IsReproducibleFromTheGenerator_AndDiverse()
    {
        var (z1, _) = EqualNormPair(5);
        using var generator2 = new Generator(42);
        var a = SphericalInterpolation.Slerp(z1, z1, 1.0, generator2);
        using var generator3 = new Generator(42);
        var b = SphericalInterpolation.Slerp(z1, z1, 1.0, generator3);
        using var generator4 = new Generator(43);
        var c = SphericalInterpolation.Slerp(z1, z1, 1.0, generator4);
        Assert.True(a.eq(b).all().item<bool>());
        Assert.False(allclose(a, c, atol: 1e-3));
    }

    [Fact]
    public void InterpolatedStandardNormals_StayStandardNormal_InHighDimension()
    {
        // The paper's Appendix A.1 claim, checked: 64 pairs of 4×64×64 N(0, I) latents at random phases.
        const int pairs = 64;
        const long dim = 4 * 64 * 64;
        using var g = new Generator(123);
        var z1 = randn(pairs, dim, generator: g);
        var z2 = randn(pairs, dim, generator: g);
        var random = new Random(7);
        var phis = tensor(Enumerable.Range(0, pairs).Select(_ => SphericalInterpolation.SamplePhase(random)).ToArray());
        var z = SphericalInterpolation.Slerp(z1, z2, phis);

        double mean = z.mean().item<float>();
        double variance = z.var().item<float>();
        var normRatio = z.norm(1).Div(Math.Sqrt(dim));
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(variance, 0.97, 1.03);
        Assert.InRange(normRatio.min().item<float>(), 0.97, 1.03);
        Assert.InRange(normRatio.max().item<float>(), 0.97, 1.03);
        // Per-sample variance too, so no single extrapolated sample drifts off the shell.
        var perSample = z.var(1);
        Assert.InRange(perSample.min().item<float>(), 0.93, 1.07);
        Assert.InRange(perSample.max().item<float>(), 0.93, 1.07);
    }

    [Fact]
    public void RejectsMismatchedShapes_AndPhaseCount()
    {
        Assert.Throws<ArgumentException>(() => SphericalInterpolation.Slerp(zeros(2, 3), zeros(2, 4), zeros(2, dtype: ScalarType.Float64)));
        Assert.Throws<ArgumentException>(() => SphericalInterpolation.Slerp(ones(2, 3), ones(2, 3), zeros(3, dtype: ScalarType.Float64)));
    }

    [Fact]
    public void PreservesDtype_AndSamplesPhaseOverTheWholeCircle()
    {
        var (z1, z2) = EqualNormPair(6);
        Assert.Equal(ScalarType.BFloat16, SphericalInterpolation.Slerp(z1.to(ScalarType.BFloat16), z2.to(ScalarType.BFloat16), 1.0).dtype);
        var random = new Random(1);
        var phases = Enumerable.Range(0, 4000).Select(_ => SphericalInterpolation.SamplePhase(random)).ToArray();
        Assert.All(phases, p => Assert.InRange(p, 0, 2 * Math.PI));
        Assert.True(phases.Count(p => p > Math.PI) > 1800, "half the phases lie on the far half of the circle");
    }
}
