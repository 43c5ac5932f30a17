using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.IO;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests;

public class SafeTensorsTests
{
    [Fact]
    public void ReadsTheGoldenFile_WithShapesAndDtypesFromItsHeader()
    {
        using var file = SafeTensorsFile.Open(SharedData.TinyA("golden.safetensors"));
        Assert.Equal("pt", file.Metadata["format"]);
        var ids = file.Load("text.input_ids");
        Assert.Equal(ScalarType.Int64, ids.dtype);
        Assert.Equal([3L, 77L], ids.shape);
        Assert.Equal([49406L, 320, 1125, 539, 320, 2368, 49407, 49407], ids[0, ..8].data<long>().ToArray());
        Assert.Equal([10L], file.Load("sched.timesteps").shape);
        Assert.Equal(ScalarType.Float64, file.Load("unet.out", ScalarType.Float64).dtype);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Bool)]
    public void SaveThenOpen_RoundTripsExactly(ScalarType type)
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"diffii-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            var a = randn(3, 5).Mul(10).to(type);
            var scalar = tensor(3.0).to(type);
            var emptyT = zeros([0, 4], dtype: type);
            SafeTensorsFile.Save(path, [new("b", a), new("a.scalar", scalar), new("empty", emptyT)], new Dictionary<string, string> { ["format"] = "pt" });
            using var file = SafeTensorsFile.Open(path);
            Assert.Equal(["a.scalar", "b", "empty"], file.Keys.Order().ToArray());
            Assert.True(file.Load("b").eq(a).all().item<bool>());
            Assert.Empty(file.Load("a.scalar").shape);
            Assert.Equal([0L, 4L], file.Load("empty").shape);
            Assert.Equal(0, (new FileInfo(path).Length - 8 - file.Tensors.Sum(t => t.End - t.Begin)) % 8);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void TruncatedFile_IsRefused_WithThePathAndTheTensorInTheMessage()
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"diffii-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensorsFile.Save(path, [new("weight", randn(16, 16))]);
            byte[] bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^10]);
            var e = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("'weight'", e.Message);

            File.WriteAllBytes(path, [1, 2, 3]);
            Assert.Contains("too short", Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path)).Message);

            File.WriteAllBytes(path, [.. BitConverter.GetBytes(4L), .. "{{{{"u8.ToArray()]);
            Assert.Contains("not valid JSON", Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path)).Message);
        }
        finally { File.Delete(path); }
    }
}
