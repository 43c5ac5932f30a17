using Training = DiffII.Diffusion.Training;
using DiffII.Diffusion.Pipelines;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Models;

public class TextualInversionTests
{
    [Fact]
    public void TrainTokenRows_LearnsOnlyTheNewTokens_AndLeavesTheTableUntouched()
    {
        using var sd = StableDiffusion.Load(SharedData.TinyA());
        int id = sd.Tokenizer.AddToken("<class_0>");
        int cat = sd.Tokenizer.Encode("cat", addSpecialTokens: false).Single();
        Assert.Equal(id, sd.TextEncoder.AddTokenEmbeddings(1, cat).Single());
        var table = sd.TextEncoder.text_model.embeddings.token_embedding.weight!.detach().clone();

        var ids = sd.Tokenizer.EncodeBatch(["a photo of a <class_0>"]);
        var before = sd.TextEncoder.forward(ids).detach().clone();
        var rows = new Parameter(sd.TextEncoder.GetTokenEmbeddings([id]), requires_grad: true);
        sd.TextEncoder.TrainTokenRows([id], rows);
        TensorAssert.Close(before, sd.TextEncoder.forward(ids), 0, 0, "override with identical rows changes nothing");

        var optimizer = new Training.AdamW([rows], lr: 0.05, weight_decay: 0.01);
        var target = sd.TextEncoder.forward(sd.Tokenizer.EncodeBatch(["a photo of a dog"])).detach();
        double first = 0, last = 0;
        for (int step = 0; step < 20; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.mse_loss(sd.TextEncoder.forward(ids), target);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.True(last < first * 0.8, $"loss {first} -> {last}");
        Assert.True(sd.TextEncoder.text_model.embeddings.token_embedding.weight!.eq(table).all().item<bool>(), "no table row may move");

        sd.TextEncoder.StopTrainingTokenRows();
        sd.TextEncoder.SetTokenEmbeddings([id], rows.detach());
        TensorAssert.Close(rows.detach(), sd.TextEncoder.GetTokenEmbeddings([id]), 0, 0, "learned row written back");
    }
}
