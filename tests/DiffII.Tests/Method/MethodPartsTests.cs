using DiffII.Concepts;
using DiffII.Denoising;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Schedulers;
using DiffII.Imaging;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Tests.Method;

public sealed class MethodPartsTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-parts-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    static List<Tensor> Decoded(IEnumerable<LabeledImage> images) =>
        images.Select(i => { using var b = ImageCodec.Decode(i.ReadBytes(), i.Id); return ImageCodec.ToTensor(b, 16); }).ToList();

    /// <summary>The ε-prediction loss on a fixed set of (image, t, noise), so before/after compare like with like.</summary>
    static double FixedLoss(StableDiffusion sd, IReadOnlyList<Tensor> images, IReadOnlyList<int> classes, Func<int, string> prompt)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var g = new Generator(99);
        var latents = sd.EncodeImages(stack(images.ToArray()));
        latents = cat([latents, latents, latents]);
        var noise = randn(latents.shape, generator: g);
        var t = tensor(Enumerable.Range(0, (int)latents.shape[0]).Select(i => (long)(50 + 900 * i / latents.shape[0])).ToArray());
        var noisy = TrainingNoise.AddNoise(sd.Schedule, latents, noise, t);
        var ids = sd.Tokenizer.EncodeBatch(Enumerable.Repeat(classes, 3).SelectMany(c => c).Select(prompt).ToList());
        return nn.functional.mse_loss(sd.Unet.forward(noisy, t, sd.TextEncoder.forward(ids)), noise).item<float>();
    }

    [Fact]
    public void ConceptLearning_LowersTheLossOfTheLearnedPrompts()
    {
        using var sd = TinyGenerator.Load();
        var images = TinyGenerator.Images(("cardinal", 2), ("jay", 2));
        var tensors = Decoded(images);
        var byClass = new List<IReadOnlyList<Tensor>> { tensors[..2], tensors[2..] };
        var options = new ConceptOptions { Metaclass = "bird", Steps = 60, BatchSize = 4, LoraRank = 4, LoraLearningRate = 3e-3, TokenLearningRate = 1e-2, Seed = 3 };

        var initial = LearnedConcepts.Initialise(sd, ["cardinal", "jay"], "bird");
        initial.ApplyTo(sd);
        double before = FixedLoss(sd, tensors, [0, 0, 1, 1], c => initial.Prompt(c));
        var concepts = ConceptLearner.Learn(sd, ["cardinal", "jay"], byClass, options, Path.Combine(_root, "learn"));
        double after = FixedLoss(sd, tensors, [0, 0, 1, 1], c => concepts.Prompt(c));
        Assert.True(after < before * 0.9, $"fixed-batch loss {before:F4} -> {after:F4}");
        Assert.Equal(60, concepts.Losses.Count);
        Assert.NotNull(concepts.LoraWeights);
        Assert.False(concepts.Embeddings[0].allclose(initial.Embeddings[0]), "the token embedding moved");

        concepts.Save(Path.Combine(_root, "saved"));
        var loaded = LearnedConcepts.Load(Path.Combine(_root, "saved"));
        Assert.True(loaded.Embeddings.eq(concepts.Embeddings).all().item<bool>());
        Assert.Equal(["<class_0>", "<class_1>"], loaded.Tokens);
        Assert.Equal(concepts.LoraWeights!.Keys.Order(), loaded.LoraWeights!.Keys.Order());
    }

    /// <summary>Records the text states each cross-attention call really receives (as its key projection's input).</summary>
    sealed class RecordingAdapter : IProjectionAdapter
    {
        public readonly List<Tensor> Seen = [];
        public Tensor Delta(Tensor input) { Seen.Add(input.detach().clone().DetachFromDisposeScope()); return zeros(input.shape[0], input.shape[1], Width); }
        public int Width = 32;
    }

    [Theory]
    [InlineData(0.3, 10, 3)]
    [InlineData(0.0, 10, 0)]
    [InlineData(1.0, 10, 10)]
    [InlineData(0.25, 6, 2)]
    public void TwoStageDenoising_UsesTheSuffixedPrompt_ForExactlyRoundSTimesNSteps(double split, int steps, int expectedSuffixSteps)
    {
        using var sd = TinyGenerator.Load();
        var attention = sd.Unet.Attentions().First(a => a.Attention.IsCrossAttention).Attention;
        var recorder = new RecordingAdapter { Width = (int)attention.to_k.weight!.shape[0] };
        attention.Adapters = new AttentionAdapters { K = recorder };
        string plain = "a photo of a bird", suffixed = "a photo of a bird standing on a branch.";
        using var generator1 = new Generator(1);
        TwoStageDenoiser.Denoise(sd, randn(1, 4, 8, 8, generator: generator1), [plain], [suffixed], split, steps);
        attention.Adapters = null;

        var plainStates = sd.EncodePrompts([plain]);
        var suffixedStates = sd.EncodePrompts([suffixed]);
        Assert.Equal(steps, recorder.Seen.Count);
        // Each call carries [unconditional, conditional]; look at the conditional half.
        int suffixSteps = recorder.Seen.Count(s => s[1].allclose(suffixedStates[0], atol: 1e-6));
        int plainSteps = recorder.Seen.Count(s => s[1].allclose(plainStates[0], atol: 1e-6));
        Assert.Equal(expectedSuffixSteps, suffixSteps);
        Assert.Equal(steps - expectedSuffixSteps, plainSteps);
        Assert.All(recorder.Seen.Take(expectedSuffixSteps), s => Assert.True(s[1].allclose(suffixedStates[0], atol: 1e-6)));
        Assert.Equal(expectedSuffixSteps, TwoStageDenoiser.SuffixSteps(split, steps));
    }

    [Fact]
    public void TwoStageDenoising_EncodesABatchsPromptsInOneTextEncoderCall_EachDistinctPromptOnce()
    {
        using var sd = TinyGenerator.Load();
        var rowsSeen = new List<long>();
        var hook = sd.TextEncoder.text_model.final_layer_norm.register_forward_hook((_, input, output) => { rowsSeen.Add(input.shape[0]); return output; });
        string plain = "a photo of a bird", suffixed = "a photo of a bird standing on a branch.";
        // Four samples of one class, three with the same suffix and one without: distinct prompts are plain, suffixed and "".
        using var generator2 = new Generator(1);
        TwoStageDenoiser.Denoise(sd, randn(4, 4, 8, 8, generator: generator2), [plain, plain, plain, plain], [suffixed, suffixed, null, suffixed], 0.5, 4);
        hook.remove();
        Assert.Equal([3L], rowsSeen);
    }

    [Fact]
    public void ConceptLearning_RunsTheTextEncoderOncePerClassInTheBatch_NotOncePerSample()
    {
        using var sd = TinyGenerator.Load();
        var tensors = Decoded(TinyGenerator.Images(("cardinal", 2)));
        var rowsSeen = new List<long>();
        var hook = sd.TextEncoder.text_model.final_layer_norm.register_forward_hook((_, input, output) => { rowsSeen.Add(input.shape[0]); return output; });
        var options = new ConceptOptions { Metaclass = "bird", Steps = 3, BatchSize = 4, LoraRank = 2, Seed = 5 };
        var concepts = ConceptLearner.Learn(sd, ["cardinal"], [tensors], options, Path.Combine(_root, "learn-one-class"));
        hook.remove();
        // One class in every batch: one row per text-encoder call, one call per step run (a step retried after a
        // transient non-finite value runs twice, and says so).
        Assert.All(rowsSeen, rows => Assert.Equal(1L, rows));
        Assert.Equal(3 + concepts.RetriedSteps, rowsSeen.Count);
        Assert.Equal(3, concepts.Losses.Count);
        Assert.All(concepts.Losses, l => Assert.True(double.IsFinite(l)));
    }

    [Fact]
    public void ConceptLearning_WithoutAMetaclass_IsRefusedBeforeAnyWork()
    {
        using var sd = TinyGenerator.Load();
        var tensors = Decoded(TinyGenerator.Images(("cardinal", 1)));
        string work = Path.Combine(_root, "no-metaclass");
        var e = Assert.Throws<ArgumentException>(() => ConceptLearner.Learn(sd, ["cardinal"], [tensors], new ConceptOptions { Steps = 1 }, work));
        Assert.Contains("ConceptOptions.Metaclass is empty", e.Message);
        Assert.False(Directory.Exists(work));
    }

    [Fact]
    public void InversionThenReconstruction_ReturnsFarCloserToTheSourceThanDenoisingNoise()
    {
        using var sd = TinyGenerator.Load();
        var image = Decoded(TinyGenerator.Images(("cardinal", 1)))[0];
        var x0 = sd.EncodeImages(image.unsqueeze(0));
        var text = sd.EncodePrompts(["a photo of a bird"]);
        var inverted = Sampling.DdimInvert(sd, x0, text, 50);
        var reconstructed = Sampling.Ddim(sd, inverted, Sampling.Constant(text), null, 1.0, 50);
        using var generator3 = new Generator(5);
        var fromNoise = Sampling.Ddim(sd, randn(x0.shape, generator: generator3), Sampling.Constant(text), null, 1.0, 50);
        double inversionError = (reconstructed - x0).abs().mean().item<float>();
        double noiseError = (fromNoise - x0).abs().mean().item<float>();
        Assert.True(inversionError < 0.25 * noiseError, $"reconstruction error {inversionError:F4} vs from noise {noiseError:F4}");
    }
}
