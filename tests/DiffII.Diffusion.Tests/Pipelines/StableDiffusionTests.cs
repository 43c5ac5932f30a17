using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Pipelines;

public class StableDiffusionTests
{
    static readonly string[] Prompts = ["a photo of a cat", "a photo of a <class_3> bird standing on a tree branch.", ""];

    static Tensor Golden(string key) { using var f = SafeTensorsFile.Open(SharedData.TinyA("golden.safetensors")); return f.Load(key); }

    static StableDiffusion TinyA() => StableDiffusion.Load(SharedData.TinyA());

    [Fact]
    public void TextEncoding_FromPrompts_MatchesDiffusers()
    {
        using var sd = TinyA();
        TensorAssert.Close(Golden("text.last_hidden_state"), sd.EncodePrompts(Prompts), 1e-4, 1e-4, "text.last_hidden_state");
        Assert.Equal(16, sd.ImageSize);
    }

    [Fact]
    public void EncodePrompts_RunsTheTextEncoderOncePerDistinctPrompt_AndCopiesItsRowToRepeats()
    {
        using var sd = TinyA();
        var rowsSeen = new List<long>();
        // The final LayerNorm runs once per text-encoder call, on [rows, 77, hidden].
        var hook = sd.TextEncoder.text_model.final_layer_norm.register_forward_hook((_, input, output) => { rowsSeen.Add(input.shape[0]); return output; });
        var states = sd.EncodePrompts(["a photo of a cat", "a photo of a dog", "a photo of a cat", "a photo of a cat"]);
        hook.remove();

        Assert.Equal([2L], rowsSeen);
        Assert.Equal(new long[] { 4, 77, sd.TextEncoder.Config.HiddenSize }, states.shape);
        using var cat = sd.EncodePrompts(["a photo of a cat"]);
        using var dog = sd.EncodePrompts(["a photo of a dog"]);
        foreach (int row in new[] { 0, 2, 3 }) Assert.True(states[row].eq(cat[0]).all().item<bool>(), $"row {row} is the cat prompt's states");
        Assert.True(states[1].eq(dog[0]).all().item<bool>());
        // All-distinct batches are encoded as they are (the diffusers golden above covers their values).
        Assert.Throws<ArgumentException>(() => sd.EncodePrompts([]));
    }

    [Fact]
    public void TenStepCfgDdimLoop_MatchesDiffusers_StepByStep()
    {
        using var sd = TinyA();
        var text = sd.EncodePrompts(Prompts);
        var expected = Golden("ddim.latents");
        var final = Sampling.Ddim(sd, Golden("ddim.x_T"), Sampling.Constant(text[..1]), text[2..3], guidanceScale: 7.5, numSteps: 10,
            onStep: s => TensorAssert.Close(expected[s.Index], s.Latents, 1e-3, 1e-3, $"ddim.latents[{s.Index}]"));
        TensorAssert.Close(Golden("ddim.final"), final, 1e-3, 1e-3, "ddim.final");
        TensorAssert.Close(Golden("ddim.image"), sd.Vae.Decode(final.Div(sd.Vae.ScalingFactor)), 1e-3, 1e-3, "ddim.image");
    }

    [Fact]
    public void InversionAndReconstruction_MatchDiffusers()
    {
        using var sd = TinyA();
        var text = sd.EncodePrompts(Prompts)[1..2];
        var expected = Golden("inv.latents");
        var inverted = Sampling.DdimInvert(sd, Golden("inv.x0"), text, numSteps: 10,
            onStep: s => TensorAssert.Close(expected[s.Index], s.Latents, 1e-3, 1e-3, $"inv.latents[{s.Index}]"));
        TensorAssert.Close(Golden("inv.inverted"), inverted, 1e-3, 1e-3, "inv.inverted");
        var recon = Golden("inv.recon_latents");
        var reconstruction = Sampling.Ddim(sd, inverted, Sampling.Constant(text), null, guidanceScale: 1.0, numSteps: 10,
            onStep: s => TensorAssert.Close(recon[s.Index], s.Latents, 1e-3, 1e-3, $"inv.recon_latents[{s.Index}]"));
        TensorAssert.Close(Golden("inv.reconstruction"), reconstruction, 1e-3, 1e-3, "inv.reconstruction");
    }

    [Fact]
    public void SingleFileCopy_LoadsToIdenticalOutputs()
    {
        string dir = Directory.CreateTempSubdirectory("diffii-single-").FullName;
        try
        {
            string file = Path.Combine(dir, "tiny.safetensors");
            using (var unet = SafeTensorsFilesSource.Open(SharedData.TinyA("unet", "diffusion_pytorch_model.safetensors")))
            using (var vae = SafeTensorsFilesSource.Open(SharedData.TinyA("vae", "diffusion_pytorch_model.safetensors")))
            using (var text = SafeTensorsFilesSource.Open(SharedData.TinyA("text_encoder", "model.safetensors")))
                CompVisCheckpointWriter.Save(file, unet, vae, text);
            using var single = StableDiffusion.Load(file, new StableDiffusionLoadOptions { ConfigsFrom = SharedData.TinyA() });
            using var folder = TinyA();
            var a = single.EncodePrompts(Prompts);
            Assert.True(a.eq(folder.EncodePrompts(Prompts)).all().item<bool>());
            var x = Golden("unet.sample");
            var t = Golden("unet.timesteps");
            Assert.True(single.Unet.forward(x, t, a[..2]).eq(folder.Unet.forward(x, t, a[..2])).all().item<bool>());
            Assert.True(single.EncodeImages(Golden("vae.image")).eq(folder.EncodeImages(Golden("vae.image"))).all().item<bool>());

            var missing = Assert.Throws<ArgumentException>(() => StableDiffusion.Load(file));
            Assert.Contains("holds no tokenizer", missing.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TwoHundredUNetSteps_LeaveNoLiveTensorsBehind()
    {
        using var sd = TinyA();
        var text = sd.EncodePrompts(Prompts);
        var x = Golden("ddim.x_T");
        var cond = Sampling.Constant(text[..1]);
        var uncond = text[2..3];
        // Warm up once (lazy buffers), then measure.
        Sampling.Ddim(sd, x, cond, uncond, 7.5, 10).Dispose();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int run = 0; run < 20; run++)
            Sampling.Ddim(sd, x, cond, uncond, 7.5, 10).Dispose();
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.True(after - before <= 0, $"live tensors grew by {after - before} over 200 U-Net steps");
    }

    [Fact]
    public void SaveDiffusersFolder_RoundTripsToTheSameModel()
    {
        string dir = Directory.CreateTempSubdirectory("diffii-save-").FullName;
        try
        {
            using var sd = TinyA();
            sd.Tokenizer.AddToken("<class_0>");
            sd.TextEncoder.AddTokenEmbeddings(1, 320);
            sd.SaveDiffusersFolder(dir);
            using var again = StableDiffusion.Load(dir);
            Assert.Equal(sd.Tokenizer.VocabSize, again.Tokenizer.VocabSize);
            string[] prompts = ["a photo of a <class_0> bird", ""];
            Assert.True(sd.EncodePrompts(prompts).allclose(again.EncodePrompts(prompts)));
            var x = Golden("unet.sample");
            var t = Golden("unet.timesteps");
            var h = sd.EncodePrompts(Prompts)[..2];
            Assert.True(sd.Unet.forward(x, t, h).eq(again.Unet.forward(x, t, h)).all().item<bool>());
        }
        finally { Directory.Delete(dir, true); }
    }
}
