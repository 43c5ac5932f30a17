using DiffII.Diffusion.Models;
using DiffII.TinyWorld.Pretraining;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.TinyWorld.Tests.Pretraining;

[Collection(GlobalTorchRngCollection.Name)]
public sealed class TinyPretrainerTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-pretrain-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    /// <summary>A stand-in Fashion-MNIST: 20 random blobs in 10 classes, in the IDX format.</summary>
    string FakeFashionMnist()
    {
        string dir = Path.Combine(_root, "fmnist");
        Directory.CreateDirectory(dir);
        var random = new Random(1);
        var pixels = new byte[20 * 784];
        for (int i = 0; i < 20; i++)
        {
            int x0 = random.Next(4, 12), y0 = random.Next(4, 12), w = random.Next(8, 14), h = random.Next(8, 14);
            for (int y = y0; y < y0 + h; y++) for (int x = x0; x < x0 + w; x++) pixels[i * 784 + y * 28 + x] = (byte)random.Next(120, 256);
        }
        FashionMnistSubset.WriteIdx(Path.Combine(dir, "train-images-idx3-ubyte.gz"), 0x803, [20, 28, 28], pixels);
        FashionMnistSubset.WriteIdx(Path.Combine(dir, "train-labels-idx1-ubyte.gz"), 0x801, [20], Enumerable.Range(0, 20).Select(i => (byte)(i % 10)).ToArray());
        return dir;
    }

    PretrainOptions Options(string work, string data, int steps) => new()
    {
        WorkFolder = Path.Combine(_root, work), FashionMnistFolder = data, BatchSize = 4, VaeSteps = steps, CheckpointEvery = 2, Seed = 5,
    };

    [Fact]
    public void VaeStage_InterruptedAndResumed_EndsWithTheSameWeightsAsAnUninterruptedRun()
    {
        string data = FakeFashionMnist();
        var straight = new TinyPretrainer(Options("a", data, 6)).TrainVae();

        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.Step == 3) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => new TinyPretrainer(Options("b", data, 6)).TrainVae(progress, cts.Token));
        Assert.True(File.Exists(Path.Combine(_root, "b", "vae.state.json")));
        var resumed = new TinyPretrainer(Options("b", data, 6)).TrainVae();

        Assert.Equal(straight.ScalingFactor, resumed.ScalingFactor, 6);
        Assert.True(straight.ScalingFactor > 0);
        foreach (var (key, value) in straight.state_dict())
            Assert.True(value.allclose(resumed.state_dict()[key], rtol: 1e-5, atol: 1e-6), key);

        // A finished stage is not redone.
        var again = new TinyPretrainer(Options("b", data, 6)).TrainVae(new SyncProgress(_ => Assert.Fail("no step should run")));
        Assert.Equal(resumed.ScalingFactor, again.ScalingFactor);
    }

    [Fact]
    public void LatentChannels_ShapeTheVaesLatentAndTheUNetsInputAndOutput()
    {
        string data = FakeFashionMnist();
        var options = Options("wide", data, 2) with { LatentChannels = 8 };
        using var vae = new TinyPretrainer(options).TrainVae();
        Assert.Equal(8, vae.Config.LatentChannels);
        using (var posterior = vae.Encode(zeros(1, 3, TinyModelConfigs.ImageSize, TinyModelConfigs.ImageSize)))
            Assert.Equal([1L, 8, 8, 8], posterior.Mean.shape);
        var unet = TinyModelConfigs.UNet(8);
        Assert.Equal((8, 8), (unet.InChannels, unet.OutChannels));
    }

    [Fact]
    public void ANonFiniteStep_IsNeverApplied_AndStopsTheStageWithTheStepAndWhatToDo()
    {
        string data = FakeFashionMnist();
        // A learning rate no model survives: the first step's update makes the next loss non-finite, every try.
        var options = Options("diverge", data, 4) with { VaeLearningRate = 1e30, WarmupSteps = 0 };
        var error = Assert.Throws<PretrainingDivergedException>(() => new TinyPretrainer(options).TrainVae());
        Assert.Equal("vae", error.Stage);
        Assert.InRange(error.Step, 2, 4);
        Assert.Contains("Lower the learning rate", error.Message);
    }

    [Fact]
    public void LatentSize16_HalvesTheDownsampling_AndTheUNetDenoisesAt16x16()
    {
        string data = FakeFashionMnist();
        var options = Options("wide16", data, 2) with { LatentSize = 16 };
        using var vae = new TinyPretrainer(options).TrainVae();
        Assert.Equal(2, vae.DownscaleFactor);
        using (var posterior = vae.Encode(zeros(1, 3, TinyModelConfigs.ImageSize, TinyModelConfigs.ImageSize)))
            Assert.Equal([1L, 4, 16, 16], posterior.Mean.shape);
        using var unet = new UNet2DConditionModel(TinyModelConfigs.UNet(4, 16));
        using var _ = no_grad();
        using var eps = unet.forward(randn(2, 4, 16, 16), tensor(new long[] { 10, 900 }), randn(2, 5, TinyModelConfigs.TextHidden));
        Assert.Equal([2L, 4, 16, 16], eps.shape);
        Assert.Throws<ArgumentOutOfRangeException>(() => TinyModelConfigs.Vae(latentSize: 12));
    }

    [Fact]
    public void TheModelCard_DescribesTheArchitectureItWasWrittenFor()
    {
        string data = FakeFashionMnist();
        string output = Path.Combine(_root, "card16");
        using var sd = new TinyPretrainer(Options("card16-work", data, 2) with { LatentSize = 16, UNetSteps = 2 }).Run(output);
        string card = File.ReadAllText(Path.Combine(output, "MODEL_CARD.md"));
        Assert.Contains("channels 32/64, 1 layer(s) per block, 2× downsampling: 32×32×3 → 16×16×4", card);
        Assert.Contains("cross-attention at 8×8 and 4×4", card);
        // One sample grid per coarse kind, and the recipe that made it, down to the options that reproduce it.
        Assert.All(ItemKinds.Words, kind => Assert.True(File.Exists(Path.Combine(output, $"samples-{kind}.png")), kind));
        Assert.All(ItemKinds.Words, kind => Assert.Contains($"![{kind}](samples-{kind}.png)", card));
        Assert.Contains("min-SNR-γ (γ = 5)", card);
        Assert.Contains("--latent-size 16 --latent-channels 4", card);
        Assert.Contains("never its class", card);
    }

    [Fact]
    public void UNetStage_TrainsTheUNetAndTextEncoder_AndResumesExactly()
    {
        string data = FakeFashionMnist();
        PretrainOptions Stage2(string work) => Options(work, data, 2) with { UNetSteps = 6, CheckpointEvery = 3 };

        var straightTrainer = new TinyPretrainer(Stage2("u1"));
        using var straight = straightTrainer.TrainUNet(straightTrainer.TrainVae());
        // The exported (EMA) U-Net and the text encoder must have moved away from their initial weights.
        torch.manual_seed(Stage2("u1").Seed + 1);
        var initial = new DiffII.Diffusion.Models.UNet2DConditionModel(TinyModelConfigs.UNet());
        var initialText = new DiffII.Diffusion.Models.ClipTextModel(TinyPretrainer.TextConfig(straight.Tokenizer));
        Assert.Contains(straight.Unet.state_dict(), kv => !kv.Value.allclose(initial.state_dict()[kv.Key]));
        Assert.Contains(straight.TextEncoder.state_dict(), kv => kv.Value.is_floating_point() && !kv.Value.allclose(initialText.state_dict()[kv.Key]));

        using var cts = new CancellationTokenSource();
        var interrupted = new TinyPretrainer(Stage2("u2"));
        var vae = interrupted.TrainVae();
        Assert.ThrowsAny<OperationCanceledException>(() => interrupted.TrainUNet(vae, new SyncProgress(p => { if (p.Step == 4) cts.Cancel(); }), cts.Token));
        var resumedTrainer = new TinyPretrainer(Stage2("u2"));
        using var resumed = resumedTrainer.TrainUNet(resumedTrainer.TrainVae());
        foreach (var (key, value) in straight.Unet.state_dict())
            Assert.True(value.allclose(resumed.Unet.state_dict()[key], rtol: 1e-5, atol: 1e-6), key);
    }

    sealed class SyncProgress(Action<PretrainProgress> report) : IProgress<PretrainProgress>
    {
        public void Report(PretrainProgress value) => report(value);
    }
}
