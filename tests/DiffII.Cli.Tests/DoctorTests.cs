using DiffII.Cli;
using DiffII.Diffusion.Runtime;

namespace DiffII.Cli.Tests;

public class DoctorTests
{
    [Fact]
    public async Task Doctor_LoadsTheNativeBackend_AndReportsCpuOk()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await CliApp.RunAsync(["doctor"], stdout, stderr, CancellationToken.None);
        Assert.True(code == 0, stderr.ToString());
        Assert.Contains("CPU ok (sum of ones(2,2) = 4)", stdout.ToString());
        if (OperatingSystem.IsLinux())
        {
            // Which native library was loaded, and no libstdc++ version it needs is missing here.
            Assert.Contains("native library: " + Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"), stdout.ToString());
            Assert.DoesNotContain("MISSING", stdout.ToString());
        }
    }

    [Fact]
    public async Task Doctor_ReportsTheCpusBFloat16Instructions()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await CliApp.RunAsync(["doctor"], stdout, stderr, CancellationToken.None);
        Assert.True(code == 0, stderr.ToString());
        Assert.Contains($"CPU bfloat16: {CpuBFloat16Support.Detect().Summary}", stdout.ToString());
    }

    [Fact]
    public async Task UnknownCommand_ExitsNonZero_AndNamesTheCommand()
    {
        var stderr = new StringWriter();
        int code = await CliApp.RunAsync(["frobnicate"], new StringWriter(), stderr, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Contains("'frobnicate'", stderr.ToString());
    }
}
