using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static TorchSharp.torch;

namespace DiffII.MLNet.FineTuning.Tests;

/// <summary>The TorchSharp ResNet-18 with weights mapped from ResNet18.onnx computes what the ONNX model computes.</summary>
[Collection(TorchSeedCollection.Name)]
public sealed class OnnxParityTests
{
    /// <summary>Real images (Fashion-MNIST, two tinted so B, G, R differ) at 224 px, through ML.NET's decoding chain.</summary>
    static float[][] Pixels(int size, out string folder)
    {
        folder = TestImages.TempFolder("parity");
        var (images, _) = TestImages.Read("t10k");
        var paths = new[]
        {
            TestImages.WritePng(images[0], Path.Combine(folder, "a.png")),
            TestImages.WritePng(images[7], Path.Combine(folder, "b.png"), 1.0, 0.6, 0.3),
            TestImages.WritePng(images[123], Path.Combine(folder, "c.png"), 0.4, 0.9, 1.0),
        };
        var ml = new MLContext(0);
        var data = ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { Image = p }));
        var (chain, _) = ImageColumns.ToPixels(ml, data.Schema, "Image", null, size);
        var pixels = chain.Fit(data).Transform(data);
        return pixels.GetColumn<float[]>(ImageColumns.PixelsColumn).ToArray();
    }

    sealed class PathRow { public string Image { get; set; } = ""; }

    [Fact]
    public void PooledFeaturesEqualOnnxRuntimeOnRealImages()
    {
        Diffusion.Runtime.TorchRuntime.EnsureLoaded();
        var inputs = Pixels(224, out var folder);
        try
        {
            using var model = new ResNet18(10);
            Assert.Equal(110, ResNet18OnnxWeights.Load(model)); // 22 convolutions, and 22 batch norms × 4 tensors
            model.eval();
            using var prep = new InferenceSession(ResNet18OnnxWeights.DefaultPreprocessPath);
            using var resnet = new InferenceSession(ResNet18OnnxWeights.DefaultModelPath);
            foreach (var rgbOrder in inputs)
            {
                // The package's own preprocessing wants R, G, B; ours extracted B, G, R.
                var rgb = new float[rgbOrder.Length];
                int plane = 224 * 224;
                for (int c = 0; c < 3; c++) Array.Copy(rgbOrder, (2 - c) * plane, rgb, c * plane, plane);
                using var prepared = prep.Run([NamedOnnxValue.CreateFromTensor("OriginalInput", new DenseTensor<float>(rgb, [1, 3, 224, 224]))]);
                var normalized = prepared.First().AsTensor<float>().ToArray();
                using var pooled = resnet.Run([NamedOnnxValue.CreateFromTensor("Input247", new DenseTensor<float>(normalized, [1, 3, 224, 224]))]);
                var expected = pooled.First().AsTensor<float>().ToArray();

                using var _ = no_grad();
                using var x = tensor(normalized, [1, 3, 224, 224]);
                using var features = model.Features(x);
                var got = features.data<float>().ToArray();
                Assert.Equal(512, expected.Length);
                double worst = expected.Zip(got, (e, g) => Math.Abs(e - g)).Max();
                Assert.True(worst <= 1e-4, $"Largest |ONNX − TorchSharp| pooled feature difference {worst:g3} (features up to {expected.Max():g3}).");
                Assert.True(expected.Max() > 0.1, "The features are all near zero; the test image did not reach the network.");
            }
        }
        finally { Directory.Delete(folder, true); }
    }

    [Fact]
    public void ExportedOnnxScoresEqualTheTorchSharpNetwork()
    {
        Diffusion.Runtime.TorchRuntime.EnsureLoaded();
        var inputs = Pixels(64, out var folder);
        try
        {
            random.manual_seed(3);
            using var model = new ResNet18(3);
            ResNet18OnnxWeights.Load(model);
            model.eval();
            var mean = ResNet18OnnxWeights.ChannelMeanBgr();
            using var session = new InferenceSession(ResNet18OnnxExport.Export(model, 64, mean));
            foreach (var bgr in inputs)
            {
                using var scored = session.Run([NamedOnnxValue.CreateFromTensor(ResNet18OnnxExport.InputName, new DenseTensor<float>(bgr, [1, 3, 64, 64]))]);
                var onnx = scored.First().AsTensor<float>().ToArray();
                using var _ = no_grad();
                using var x = tensor(bgr, [1, 3, 64, 64]) - tensor(mean, [1, 3, 1, 1]);
                var torchScore = nn.functional.softmax(model.forward(x), 1).data<float>().ToArray();
                Assert.Equal(3, onnx.Length);
                for (int i = 0; i < 3; i++) Assert.True(Math.Abs(onnx[i] - torchScore[i]) < 1e-5, $"Class {i}: ONNX {onnx[i]} vs TorchSharp {torchScore[i]}.");
            }
        }
        finally { Directory.Delete(folder, true); }
    }
}

/// <summary>Tests that seed libtorch's process-wide generator or train run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchSeedCollection
{
    public const string Name = "TorchSeed";
}
