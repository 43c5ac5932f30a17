namespace DiffII.Reliability.Tests.ScalarLifetime;

/// <summary>
/// No library code of ours hands libtorch a TorchSharp Scalar that nothing keeps alive (the fault is described on
/// <c>DiffII.Diffusion.Runtime.KeptScalars</c>; the scan on <see cref="TemporaryScalarScan"/>). Test projects that
/// run TorchSharp scan their own assembly the same way.
/// </summary>
public class ScalarTemporaryTests
{
    [Fact]
    public void TheScanFindsTheKnownHazards_InTorchSharpItself()
    {
        var methods = TemporaryScalarScan.UnsafeTorchSharpMethods;
        // Tensor.add(Tensor) passes alpha = 1 as a new Scalar; operator * with a double converts the double.
        Assert.Contains("TorchSharp.torch+Tensor::op_Addition(TorchSharp.torch+Tensor,TorchSharp.torch+Tensor)", methods);
        Assert.Contains("TorchSharp.torch+Tensor::op_Multiply(TorchSharp.torch+Tensor,Double)", methods);
        Assert.Contains("TorchSharp.Modules.BatchNorm", TemporaryScalarScan.UnsafeTorchSharpTypes);
        Assert.Contains("TorchSharp.Modules.AdamW", TemporaryScalarScan.UnsafeTorchSharpTypes);
        Assert.Contains("TorchSharp.Modules.SGD", TemporaryScalarScan.UnsafeTorchSharpTypes);
        // And the other direction: tensor-tensor multiplication passes no Scalar.
        Assert.DoesNotContain("TorchSharp.torch+Tensor::op_Multiply(TorchSharp.torch+Tensor,TorchSharp.torch+Tensor)", methods);
    }

    [Fact]
    public void NoAssemblyOfOurs_PassesLibtorchAScalarThatNothingKeepsAlive()
    {
        var assemblies = Directory.GetFiles(AppContext.BaseDirectory, "DiffII*.dll").Order(StringComparer.Ordinal).ToList();
        foreach (var expected in new[] { "DiffII.Diffusion.dll", "DiffII.dll", "DiffII.TinyWorld.dll", "DiffII.MLNet.FineTuning.dll", "DiffII.Cli.dll" })
            Assert.Contains(assemblies, a => Path.GetFileName(a) == expected);
        TemporaryScalarScan.AssertNone(assemblies);
    }
}
