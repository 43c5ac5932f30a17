using BatchNorm2d = DiffII.Diffusion.Models.BatchNorm2d;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.TinyWorld.Judging;

/// <summary>
/// The judge's network: a small VGG-style CNN for 32×32 tiny-world pictures (3×3 conv + batch norm + ReLU: one at
/// 32×32, two at 16×16, two at 8×8, with 2× max pooling between the stages, then global average pooling and one
/// linear layer). About 0.3 M parameters and 60 MFLOP a picture, so it trains in minutes on two cores. Input is [B, 3, 32, 32] in
/// [−1, 1], as <see cref="TinyWorldData.ToTensor"/> and the generator's decoder produce; output is class logits.
/// Fields follow torchvision's naming (features, classifier), so the state-dict keys read like a PyTorch model's.
/// </summary>
public sealed class TinyJudgeNet : nn.Module<Tensor, Tensor>
{
    public readonly Sequential features;
    public readonly Linear classifier;

    public TinyJudgeNet(int classes, int width = 32, Device? device = null) : base(nameof(TinyJudgeNet))
    {
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        int inChannels = 3, index = 0;
        int[] widths = [width, 2 * width, 4 * width];
        for (int stage = 0; stage < widths.Length; stage++)
        {
            for (int conv = 0; conv < (stage == 0 ? 1 : 2); conv++)
            {
                layers.Add(($"{index++}", nn.Conv2d(inChannels, widths[stage], 3, padding: 1, bias: false)));
                layers.Add(($"{index++}", new BatchNorm2d(widths[stage])));
                layers.Add(($"{index++}", nn.ReLU()));
                inChannels = widths[stage];
            }
            if (stage < widths.Length - 1) layers.Add(($"{index++}", nn.MaxPool2d(2)));
        }
        features = nn.Sequential(layers);
        classifier = nn.Linear(inChannels, classes);
        RegisterComponents();
        if (device is not null && device.type != DeviceType.CPU) this.to(device);
    }

    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var pooled = features.forward(images).mean([2L, 3L]);
        return scope.MoveToOuter(classifier.forward(pooled));
    }
}
