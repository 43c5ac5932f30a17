namespace DiffII.TinyWorld.Tests;

public class ScalarLifetimeTests
{
    /// <summary>Tests run in parallel, so a temporary Scalar here is as exposed as one in the library (see KeptScalars).</summary>
    [Fact]
    public void ThisTestAssembly_PassesLibtorchNoScalarThatNothingKeepsAlive() =>
        TemporaryScalarScan.AssertNone([typeof(ScalarLifetimeTests).Assembly.Location]);
}
