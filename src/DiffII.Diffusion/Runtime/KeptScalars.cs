using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Runtime;

/// <summary>
/// Tensor arithmetic with .NET numbers, written so that the <see cref="Scalar"/> handed to libtorch stays alive until
/// libtorch has returned. Use these instead of <c>a + b</c>, <c>x * 0.5</c>, <c>1 - x</c>, <c>x.square()</c> or
/// <c>torch.arange(n)</c> on TorchSharp tensors.
/// </summary>
/// <remarks>
/// Why: TorchSharp converts a .NET number into a <see cref="Scalar"/>, an object with a native handle and a finalizer,
/// and passes only the handle to libtorch. Nothing keeps the object reachable during the native call, so if another
/// thread's allocation starts a garbage collection at that moment, the finalizer can free the native scalar while
/// libtorch is reading it. The operation then uses whatever the freed memory holds: a NaN or a huge update in
/// training, a wrong pixel in sampling, or the error "For integral input tensors, argument alpha must not be a
/// floating point number". Even <c>a + b</c> does this, because <c>Tensor.add(Tensor)</c> passes alpha = 1 as a new
/// Scalar. (Reproduced on TorchSharp 0.107 in seconds with a second thread calling GC.Collect; see
/// tests/DiffII.Reliability.Tests/ScalarLifetime.) Here each Scalar is either a static field or a <c>using</c> local
/// that is disposed after the call returns, which keeps it reachable for the whole call. The same test reads the IL
/// of every assembly of ours and fails on any other place that makes such a temporary. Integral overloads keep
/// integer tensors integral, as TorchSharp's int conversions do (<c>slot.ClampMin(0)</c> stays int64).
/// </remarks>
public static class KeptScalars
{
    static readonly Scalar One = 1.ToScalar();
    static readonly Scalar Two = 2.ToScalar();

    /// <summary>Runs <paramref name="op"/> with <paramref name="value"/> as a Scalar that is disposed only after it returns.</summary>
    static Tensor With(double value, Func<Scalar, Tensor> op)
    {
        using var scalar = value.ToScalar();
        return op(scalar);
    }

    /// <inheritdoc cref="With(double, Func{Scalar, Tensor})"/>
    static Tensor With(long value, Func<Scalar, Tensor> op)
    {
        using var scalar = value.ToScalar();
        return op(scalar);
    }

    /// <summary><c>a + b</c>.</summary>
    public static Tensor Add(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary><c>a + alpha * b</c>.</summary>
    public static Tensor Add(this Tensor a, Tensor b, double alpha) => With(alpha, s => a.add(b, s));

    /// <summary><c>x + value</c>.</summary>
    public static Tensor Add(this Tensor x, double value) => With(value, s => x.add(s, One));

    /// <summary><c>x + value</c>, for integral tensors too.</summary>
    public static Tensor Add(this Tensor x, long value) => With(value, s => x.add(s, One));

    /// <summary>In place: <c>a += b</c>.</summary>
    public static Tensor Add_(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>In place: <c>a += alpha * b</c>.</summary>
    public static Tensor Add_(this Tensor a, Tensor b, double alpha) => With(alpha, s => a.add_(b, s));

    /// <summary>In place: <c>x += value</c>.</summary>
    public static Tensor Add_(this Tensor x, double value) => With(value, s => x.add_(s, One));

    /// <summary>In place: <c>x += value</c>, for integral tensors too.</summary>
    public static Tensor Add_(this Tensor x, long value) => With(value, s => x.add_(s, One));

    /// <summary><c>a - b</c>.</summary>
    public static Tensor Sub(this Tensor a, Tensor b) => a.sub(b);

    /// <summary><c>x - value</c>.</summary>
    public static Tensor Sub(this Tensor x, double value) => With(value, s => x.sub(s));

    /// <summary><c>x - value</c>, for integral tensors too.</summary>
    public static Tensor Sub(this Tensor x, long value) => With(value, s => x.sub(s));

    /// <summary><c>value - x</c> (torch.rsub).</summary>
    public static Tensor Rsub(this Tensor x, double value) => With(value, s => x.neg().add_(s, One));

    /// <summary><c>value - x</c>, for integral tensors too.</summary>
    public static Tensor Rsub(this Tensor x, long value) => With(value, s => x.neg().add_(s, One));

    /// <summary>In place: <c>x += value * t1 * t2</c>.</summary>
    public static Tensor AddCMul_(this Tensor x, Tensor t1, Tensor t2, double value) => With(value, s => x.addcmul_(t1, t2, s));

    /// <summary>In place: <c>x += value * t1 / t2</c>.</summary>
    public static Tensor AddCDiv_(this Tensor x, Tensor t1, Tensor t2, double value) => With(value, s => x.addcdiv_(t1, t2, s));

    /// <summary><c>x * value</c>.</summary>
    public static Tensor Mul(this Tensor x, double value) => With(value, s => x.mul(s));

    /// <summary><c>x * value</c>, for integral tensors too.</summary>
    public static Tensor Mul(this Tensor x, long value) => With(value, s => x.mul(s));

    /// <summary>In place: <c>x *= value</c>.</summary>
    public static Tensor Mul_(this Tensor x, double value) => With(value, s => x.mul_(s));

    /// <summary><c>x / value</c>.</summary>
    public static Tensor Div(this Tensor x, double value) => With(value, s => x.div(s));

    /// <summary><c>x²</c>, as torch.square (which is <c>x.pow(2)</c>).</summary>
    public static Tensor Square(this Tensor x) => x.pow(Two);

    /// <summary><c>x ** exponent</c>.</summary>
    public static Tensor Pow(this Tensor x, double exponent) => With(exponent, s => x.pow(s));

    /// <summary><c>x.clamp(min, max)</c>.</summary>
    public static Tensor Clamp(this Tensor x, double min, double max) => With(min, lo => With(max, hi => x.clamp(lo, hi)));

    /// <summary><c>x.clamp(min, max)</c>, for integral tensors too.</summary>
    public static Tensor Clamp(this Tensor x, long min, long max) => With(min, lo => With(max, hi => x.clamp(lo, hi)));

    /// <summary><c>x.clamp(min: min)</c>.</summary>
    public static Tensor ClampMin(this Tensor x, double min) => With(min, s => x.clamp_min(s));

    /// <summary><c>x.clamp(min: min)</c>, for integral tensors too.</summary>
    public static Tensor ClampMin(this Tensor x, long min) => With(min, s => x.clamp_min(s));

    /// <summary><c>x.clamp(max: max)</c>.</summary>
    public static Tensor ClampMax(this Tensor x, double max) => With(max, s => x.clamp_max(s));

    /// <summary><c>x == value</c>, element-wise.</summary>
    public static Tensor Eq(this Tensor x, long value) => With(value, s => x.eq(s));

    /// <summary><c>x &lt; value</c>, element-wise.</summary>
    public static Tensor Lt(this Tensor x, double value) => With(value, s => x.lt(s));

    /// <summary><c>x &gt;= value</c>, element-wise.</summary>
    public static Tensor Ge(this Tensor x, long value) => With(value, s => x.ge(s));

    /// <summary>In place: every element of <paramref name="x"/> set to <paramref name="value"/>.</summary>
    public static Tensor Fill_(this Tensor x, double value) => With(value, s => x.fill_(s));

    /// <summary><c>torch.full(size, value)</c> for an integral value.</summary>
    public static Tensor Full(long[] size, long value, ScalarType? dtype = null, Device? device = null) =>
        With(value, s => torch.full(size, s, dtype, device));

    /// <summary><c>torch.full(size, value)</c>.</summary>
    public static Tensor Full(long[] size, double value, ScalarType? dtype = null, Device? device = null) =>
        With(value, s => torch.full(size, s, dtype, device));

    /// <summary><c>torch.arange(start, end)</c> with step 1.</summary>
    public static Tensor Arange(long start, long end, ScalarType? dtype = null, Device? device = null) =>
        With(start, from => With(end, to => torch.arange(from, to, One, dtype, device)));

    /// <summary><c>torch.arange(end)</c>.</summary>
    public static Tensor Arange(long end, ScalarType? dtype = null, Device? device = null) => Arange(0, end, dtype, device);
}
