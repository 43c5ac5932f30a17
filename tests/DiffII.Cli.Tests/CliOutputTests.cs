using DiffII.Diffusion.Runtime;
using static TorchSharp.torch;

namespace DiffII.Cli.Tests;

public class CliOutputTests
{
    [Theory]
    [InlineData(false, false)]   // plain progress lines
    [InlineData(true, false)]    // --quiet
    [InlineData(false, true)]    // --json
    public void EveryStepItTracks_MakesItsTensorsInsideAScope(bool quiet, bool json)
    {
        TorchRuntime.EnsureLoaded();
        var output = new CliOutput(TextWriter.Null, TextWriter.Null, quiet, json, verbose: false, interactive: false);
        long outsideScopes = TorchSharp.DisposeScopeManager.Statistics.CreatedOutsideScopeCount;
        float sum = output.Track(progress => ones(3).Add(1).Mul(2).sum().item<float>());
        Assert.Equal(12f, sum);
        Assert.Equal(outsideScopes, TorchSharp.DisposeScopeManager.Statistics.CreatedOutsideScopeCount);
    }
}
