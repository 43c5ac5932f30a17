using DiffII.Bench;
using static TorchSharp.torch;

namespace DiffII.Bench.Tests;

public class OptionsTests
{
    [Fact]
    public void Defaults_DependOnTheProfile()
    {
        var quick = BenchOptions.Parse([]);
        Assert.Equal("quick", quick.Profile);
        Assert.Equal(["tiny", "sd15"], quick.Models);
        Assert.Equal([1, 2, 4, 8], quick.Batches);
        Assert.Equal(ScalarType.Float32, quick.DType);
        var full = BenchOptions.Parse(["--profile", "full"]);
        Assert.Equal(1000, full.MemoryImages);
        Assert.Equal(4096, full.MatmulSize);
        Assert.Equal(14, full.BudgetMinutes);
    }

    [Fact]
    public void Values_AreParsed()
    {
        var o = BenchOptions.Parse(["--model", "all", "--resolution=256,512", "--batches", "1,4", "--device", "cuda:1", "--dtype", "bf16",
            "--threads", "2", "--out", "x", "--sections", "stages,memory", "--budget-minutes", "2.5"]);
        Assert.Equal(BenchModels.Names, o.Models);
        Assert.Equal([256, 512], o.Resolutions);
        Assert.Equal([1, 4], o.Batches);
        Assert.Equal("cuda:1", o.Device);
        Assert.Equal(ScalarType.BFloat16, o.DType);
        Assert.Equal(2, o.Threads);
        Assert.True(o.Sections.SetEquals(["stages", "memory"]));
        Assert.Equal(2.5, o.BudgetMinutes);
    }

    [Theory]
    [InlineData("--profile", "slow", "--profile")]
    [InlineData("--model", "sd3", "--model")]
    [InlineData("--resolution", "500", "--resolution")]
    [InlineData("--batches", "0", "--batches")]
    [InlineData("--batches", "two", "--batches")]
    [InlineData("--device", "tpu", "--device")]
    [InlineData("--dtype", "int8", "--dtype")]
    [InlineData("--sections", "everything", "--sections")]
    [InlineData("--budget-minutes", "-1", "--budget-minutes")]
    [InlineData("--frobnicate", "1", "--frobnicate")]
    public void BadValues_NameTheOption(string option, string value, string named)
    {
        var e = Assert.Throws<BenchUsageException>(() => BenchOptions.Parse([option, value]));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void HalfPrecisionOnCpu_IsRefused_AndAMissingValueIsNamed()
    {
        Assert.Contains("float16", Assert.Throws<BenchUsageException>(() => BenchOptions.Parse(["--dtype", "float16"])).Message);
        Assert.Contains("--out", Assert.Throws<BenchUsageException>(() => BenchOptions.Parse(["--out"])).Message);
    }
}
