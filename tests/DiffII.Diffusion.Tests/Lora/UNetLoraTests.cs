using Training = DiffII.Diffusion.Training;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Lora;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Lora;

public class UNetLoraTests
{
    static string LoraFile => SharedData.TinyA("lora", "pytorch_lora_weights.safetensors");

    static UNet2DConditionModel TinyUNet()
    {
        var unet = UNet2DConditionModel.FromConfigFile(SharedData.TinyA("unet", "config.json"));
        unet.LoadWeights(SharedData.TinyA("unet", "diffusion_pytorch_model.safetensors"));
        unet.eval();
        return unet;
    }

    static Tensor Run(UNet2DConditionModel unet)
    {
        using var _ = no_grad();
        var text = ModelTestData.Golden("text.last_hidden_state")[..2];
        return unet.forward(ModelTestData.Golden("unet.sample"), ModelTestData.Golden("unet.timesteps"), text);
    }

    [Theory]
    [InlineData(1.0, "lora.unet.out")]
    [InlineData(0.5, "lora.unet.out_scale0.5")]
    public void LoadedDiffusersLora_MatchesDiffusers_AtEachScale(double scale, string golden)
    {
        var unet = TinyUNet();
        using var lora = UNetLora.Load(unet, LoraFile);
        lora.Scale = scale;
        Assert.Equal(12, lora.AttentionPaths.Count);
        Assert.Equal(4, lora.Rank);
        TensorAssert.Close(ModelTestData.Golden(golden), Run(unet), 1e-4, 1e-4, golden);
    }

    [Fact]
    public void Merge_GivesTheSameOutput_AndUnmergeRestoresTheBaseWeights()
    {
        var unet = TinyUNet();
        var before = unet.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var lora = UNetLora.Load(unet, LoraFile);
        var adapted = Run(unet);
        lora.Merge();
        Assert.All(unet.Attentions(), a => Assert.Null(a.Attention.Adapters));
        TensorAssert.Close(adapted, Run(unet), 1e-5, 1e-5, "merged vs adapter output");
        Assert.Throws<InvalidOperationException>(() => lora.Save(Path.GetTempFileName()));
        lora.Unmerge();
        TensorAssert.Close(adapted, Run(unet), 1e-5, 1e-5, "unmerged output");
        lora.Detach();
        foreach (var (key, value) in unet.state_dict())
            TensorAssert.Close(before[key], value, 1e-6, 1e-6, key);
        TensorAssert.Close(ModelTestData.Golden("unet.out"), Run(unet), 1e-4, 1e-4, "base model after detach");
    }

    [Fact]
    public void SaveThenLoad_RoundTripsTheDiffusersAttnProcFormat()
    {
        var unet = TinyUNet();
        var lora = UNetLora.Load(unet, LoraFile);
        string path = Path.Combine(Path.GetTempPath(), $"diffii-lora-{Guid.NewGuid():N}.safetensors");
        try
        {
            lora.Save(path);
            using var original = SafeTensorsFile.Open(LoraFile);
            using var saved = SafeTensorsFile.Open(path);
            Assert.Equal(original.Keys.Order(), saved.Keys.Order());
            foreach (var key in original.Keys) Assert.True(original.Load(key).eq(saved.Load(key)).all().item<bool>(), key);
            Assert.Equal("pt", saved.Metadata["format"]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void PeftLayout_LoadsToTheSameOutput()
    {
        // Rename the attn-proc keys to PEFT's "unet.<path>.to_q.lora_A.weight" layout.
        var tensors = SafeTensorsFile.LoadAll(LoraFile).ToDictionary(
            kv => "unet." + kv.Key.Replace(".processor.", ".").Replace("to_out_lora", "to_out.0.lora").Replace("_lora.down", ".lora_A").Replace("_lora.up", ".lora_B")
                .Replace(".lora.down", ".lora_A").Replace(".lora.up", ".lora_B"),
            kv => kv.Value);
        Assert.Contains("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.lora_A.weight", tensors.Keys);
        string path = Path.Combine(Path.GetTempPath(), $"diffii-peft-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensorsFile.Save(path, tensors);
            var unet = TinyUNet();
            using var lora = UNetLora.Load(unet, path);
            TensorAssert.Close(ModelTestData.Golden("lora.unet.out"), Run(unet), 1e-4, 1e-4, "PEFT layout");
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void FreshAdapters_ChangeNothing_TrainOnlyThemselves_AndLowerALoss()
    {
        var unet = TinyUNet();
        unet.Freeze();
        var baseline = Run(unet);
        using var lora = UNetLora.Attach(unet, rank: 2, generator: new Generator(3));
        TensorAssert.Close(baseline, Run(unet), 0, 0, "a fresh LoRA (up = 0) is the identity");
        var parameters = lora.Parameters().ToList();
        Assert.Equal(12 * 4 * 2, parameters.Count);
        Assert.All(parameters, p => Assert.True(p.requires_grad));

        var optimizer = new Training.AdamW(parameters, lr: 1e-2);
        var text = ModelTestData.Golden("text.last_hidden_state")[..2];
        var sample = ModelTestData.Golden("unet.sample");
        var t = ModelTestData.Golden("unet.timesteps");
        var target = zeros_like(sample);
        float first = 0, last = 0;
        for (int step = 0; step < 15; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.mse_loss(unet.forward(sample, t, text), target);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.True(last < first * 0.9, $"loss {first} -> {last}");
        Assert.All(unet.parameters(), p => Assert.Null(p.grad));
    }

    [Fact]
    public void ForeignKeysAndWrongShapes_AreNamed()
    {
        string path = Path.Combine(Path.GetTempPath(), $"diffii-badlora-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensorsFile.Save(path, new Dictionary<string, Tensor>
            {
                ["mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight"] = zeros(4, 33),
                ["mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.up.weight"] = zeros(64, 4),
                ["text_encoder.layers.0.q_proj.lora.down.weight"] = zeros(4, 32),
                ["up_blocks.9.attentions.0.transformer_blocks.0.attn1.processor.to_v_lora.up.weight"] = zeros(4, 4),
            });
            var e = Assert.Throws<CheckpointMismatchException>(() => UNetLora.Load(TinyUNet(), path));
            Assert.Contains("text_encoder.layers.0.q_proj.lora.down.weight", e.Message);
            Assert.Contains("no attention 'up_blocks.9", e.Message);
            Assert.Contains("mid_block.attentions.0.transformer_blocks.0.attn1.to_q': down [4, 33]", e.Message);
        }
        finally { File.Delete(path); }
    }
}
