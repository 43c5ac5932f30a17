using DiffII.Diffusion.Runtime;
using BatchNorm2d = DiffII.Diffusion.Models.BatchNorm2d;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.MLNet.FineTuning;

#pragma warning disable IDE1006 // field names are torchvision's attribute names, because they become state-dict keys

/// <summary>
/// torchvision's <c>BasicBlock</c>: two 3×3 convolutions with batch norm, and a 1×1 convolution plus batch norm
/// (<c>downsample.0</c>, <c>downsample.1</c>) on the shortcut when the block changes resolution or width.
/// </summary>
/// <remarks>Children are run with <c>call</c>, not <c>forward</c>, so forward hooks (profilers, FLOP counters) see them.</remarks>
public sealed class BasicBlock : nn.Module<Tensor, Tensor>
{
    public readonly Conv2d conv1;
    public readonly BatchNorm2d bn1;
    public readonly Conv2d conv2;
    public readonly BatchNorm2d bn2;
    public readonly Sequential? downsample;

    public BasicBlock(long inChannels, long channels, long stride) : base(nameof(BasicBlock))
    {
        conv1 = nn.Conv2d(inChannels, channels, 3, stride: stride, padding: 1, bias: false);
        bn1 = new BatchNorm2d(channels);
        conv2 = nn.Conv2d(channels, channels, 3, stride: 1, padding: 1, bias: false);
        bn2 = new BatchNorm2d(channels);
        if (stride != 1 || inChannels != channels)
            downsample = nn.Sequential(("0", nn.Conv2d(inChannels, channels, 1, stride: stride, bias: false)), ("1", new BatchNorm2d(channels)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.relu(bn1.call(conv1.call(x)));
        y = bn2.call(conv2.call(y));
        var shortcut = downsample is null ? x : downsample.call(x);
        return nn.functional.relu(y.Add(shortcut)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// torchvision's <c>resnet18</c> layout with its state-dict keys (<c>conv1</c>, <c>bn1</c>, <c>layer1.0.conv1</c>, …,
/// <c>fc</c>), with the block counts of the ImageNet network that ships in Microsoft.ML.DnnImageFeaturizer.ResNet18:
/// [2, 2, 2, 3]. That file (a CNTK export) has a third basic block in layer4 (<c>layer4.2</c>), one more than
/// torchvision's [2, 2, 2, 2]; the module follows the file so every pretrained tensor has a home.
/// Input: [B, 3, H, W] already normalised for the weights in use (see <see cref="ResNet18OnnxWeights"/>); any H, W ≥ 32.
/// <see cref="Features"/> is the global-average-pooled output of layer4 (512 per image).
/// </summary>
public sealed class ResNet18 : nn.Module<Tensor, Tensor>
{
    public const int FeatureCount = 512;
    /// <summary>Basic blocks in layer1..layer4 of the packaged network.</summary>
    public static readonly IReadOnlyList<int> LayerBlocks = [2, 2, 2, 3];

    public readonly Conv2d conv1;
    public readonly BatchNorm2d bn1;
    public readonly Sequential layer1;
    public readonly Sequential layer2;
    public readonly Sequential layer3;
    public readonly Sequential layer4;
    public readonly Linear fc;

    /// <summary>Number of outputs of <see cref="fc"/>.</summary>
    public int NumClasses { get; }

    public ResNet18(int numClasses) : base(nameof(ResNet18))
    {
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), $"A classifier needs at least one class; got {numClasses}.");
        NumClasses = numClasses;
        conv1 = nn.Conv2d(3, 64, 7, stride: 2, padding: 3, bias: false);
        bn1 = new BatchNorm2d(64);
        layer1 = Layer(64, 64, 1, LayerBlocks[0]);
        layer2 = Layer(64, 128, 2, LayerBlocks[1]);
        layer3 = Layer(128, 256, 2, LayerBlocks[2]);
        layer4 = Layer(256, 512, 2, LayerBlocks[3]);
        fc = nn.Linear(FeatureCount, numClasses);
        RegisterComponents();
    }

    static Sequential Layer(long inChannels, long channels, long stride, int blocks) =>
        nn.Sequential(Enumerable.Range(0, blocks).Select(i =>
            (i.ToString(System.Globalization.CultureInfo.InvariantCulture), (nn.Module<Tensor, Tensor>)(i == 0 ? new BasicBlock(inChannels, channels, stride) : new BasicBlock(channels, channels, 1)))));

    /// <summary>The pooled features, [B, 512].</summary>
    public Tensor Features(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.relu(bn1.call(conv1.call(x)));
        y = nn.functional.max_pool2d(y, kernel_size: 3, stride: 2, padding: 1);
        y = layer4.call(layer3.call(layer2.call(layer1.call(y))));
        return nn.functional.adaptive_avg_pool2d(y, 1).flatten(1).MoveToOuterDisposeScope();
    }

    /// <summary>The class logits, [B, NumClasses].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return fc.call(Features(x)).MoveToOuterDisposeScope();
    }
}
