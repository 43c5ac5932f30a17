using Onnx;
using static TorchSharp.torch;

namespace DiffII.MLNet.FineTuning;

/// <summary>
/// The ImageNet ResNet-18 that ships in Microsoft.ML.DnnImageFeaturizer.ResNet18 (<c>DnnImageModels/ResNet18Onnx/ResNet18.onnx</c>,
/// a CNTK export), read from the ONNX file's initializers with OnnxSharp and mapped onto <see cref="ResNet18"/>'s torchvision keys.
/// </summary>
/// <remarks>
/// <para>The graph keeps batch norm separate (it is not folded into the convolutions): every <c>Conv</c> (no bias) is
/// followed by a <c>BatchNormalization</c> whose inputs are scale, bias, mean and variance, ε = 1e-5 as in torchvision.
/// So the mapping is one to one: conv weight → <c>*.conv*.weight</c>; BN scale, bias, mean, variance →
/// <c>*.bn*.weight</c>, <c>.bias</c>, <c>.running_mean</c>, <c>.running_var</c>. Which torchvision name a node gets is read
/// from the graph's structure, not from its (numbered) initializer names: the first convolution is the stem
/// (<c>conv1</c>/<c>bn1</c>); after it, each <c>Add</c> closes a residual block (blocks numbered layer1.0, layer1.1,
/// layer2.0, … by <see cref="ResNet18.LayerBlocks"/>: the file has nine, [2, 2, 2, 3]); inside a block, a 1×1 convolution is the shortcut (<c>downsample.0</c>/<c>downsample.1</c>) and the
/// 3×3 ones are <c>conv1</c>/<c>bn1</c> and <c>conv2</c>/<c>bn2</c> in graph order. Shapes are checked against the module.</para>
/// <para>The graph's padding is CNTK's asymmetric "same" padding (e.g. 3 before, 2 after for the 7×7 stride-2 stem). On
/// even input sizes it selects exactly the windows of torchvision's symmetric padding, so features agree; on odd
/// sizes (a 7×7 map entering layer4 at 112 px) torchvision's symmetric padding is what <see cref="ResNet18"/> uses.</para>
/// <para>Input convention of these weights (from <c>ResNetPreprocess.onnx</c> in the same package): BGR channel order,
/// values 0–255, minus a 224×224 mean image. <see cref="ChannelMeanBgr"/> is that image's per-channel average, used at
/// every image size.</para>
/// </remarks>
public static class ResNet18OnnxWeights
{
    /// <summary>The package's model file under an application's output folder.</summary>
    public static string DefaultModelPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");

    /// <summary>The package's preprocessing model (channel swap and mean image) under an application's output folder.</summary>
    public static string DefaultPreprocessPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>The mean image's per-channel averages in B, G, R order, for 0–255 pixel values.</summary>
    public static float[] ChannelMeanBgr(string? preprocessPath = null)
    {
        var path = preprocessPath ?? DefaultPreprocessPath;
        var model = Read(path);
        var mean = model.Graph.Initializer.FirstOrDefault(t => t.Name == "MeanImage")
                   ?? throw new InvalidDataException($"{path} has no initializer 'MeanImage'; is it ResNetPreprocess.onnx from Microsoft.ML.DnnImageFeaturizer.ResNet18?");
        var values = Floats(mean, path);
        if (mean.Dims.Count != 4 || mean.Dims[1] != 3)
            throw new InvalidDataException($"{path}: 'MeanImage' has shape [{string.Join(", ", mean.Dims)}]; expected [1, 3, H, W].");
        long plane = mean.Dims[2] * mean.Dims[3];
        var result = new float[3];
        for (int c = 0; c < 3; c++)
        {
            double sum = 0;
            for (long i = 0; i < plane; i++) sum += values[c * plane + i];
            result[c] = (float)(sum / plane);
        }
        return result;
    }

    /// <summary>The ONNX initializer name behind each of <see cref="ResNet18"/>'s backbone keys (everything except <c>fc</c>).</summary>
    public static IReadOnlyDictionary<string, string> Mapping(ModelProto model)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        var bnAfterConv = model.Graph.Node.Where(n => n.OpType == "BatchNormalization").ToDictionary(n => n.Input[0]);
        var shapes = model.Graph.Initializer.ToDictionary(t => t.Name, t => t.Dims.ToArray());
        int block = -1; // -1: the stem
        int convInBlock = 0;
        foreach (var node in model.Graph.Node)
        {
            if (node.OpType == "Add")
            {
                if (block < 0) throw new InvalidDataException("The graph has a residual Add before its stem convolution; it is not a ResNet-18.");
                block++;
                convInBlock = 0;
                continue;
            }
            if (node.OpType != "Conv") continue;
            string prefix, conv, bn;
            if (block < 0)
            {
                prefix = ""; conv = "conv1"; bn = "bn1";
                block = 0;
            }
            else
            {
                var (layer, inLayer) = Locate(block)
                    ?? throw new InvalidDataException($"The graph has a convolution ({node.Name}) after its {TotalBlocks}th residual block; the module has [{string.Join(", ", ResNet18.LayerBlocks)}] blocks.");
                prefix = $"layer{layer}.{inLayer}.";
                bool pointwise = shapes.TryGetValue(node.Input[1], out var w) && w.Length == 4 && w[2] == 1 && w[3] == 1;
                if (pointwise) { conv = "downsample.0"; bn = "downsample.1"; }
                else
                {
                    convInBlock++;
                    if (convInBlock > 2) throw new InvalidDataException($"Residual block {prefix.TrimEnd('.')} has more than two 3×3 convolutions ({node.Name}).");
                    conv = $"conv{convInBlock}"; bn = $"bn{convInBlock}";
                }
            }
            map[$"{prefix}{conv}.weight"] = node.Input[1];
            if (!bnAfterConv.TryGetValue(node.Output[0], out var norm))
                throw new InvalidDataException($"Convolution {node.Name} is not followed by a BatchNormalization; the mapping expects unfolded batch norm.");
            map[$"{prefix}{bn}.weight"] = norm.Input[1];
            map[$"{prefix}{bn}.bias"] = norm.Input[2];
            map[$"{prefix}{bn}.running_mean"] = norm.Input[3];
            map[$"{prefix}{bn}.running_var"] = norm.Input[4];
        }
        if (block != TotalBlocks) throw new InvalidDataException($"The graph has {Math.Max(block, 0)} residual blocks; the module has {TotalBlocks}.");
        return map;
    }

    static int TotalBlocks => ResNet18.LayerBlocks.Sum();

    /// <summary>The 1-based layer and 0-based index within it of residual block <paramref name="block"/>, or null past the last.</summary>
    static (int Layer, int Block)? Locate(int block)
    {
        for (int layer = 0; layer < ResNet18.LayerBlocks.Count; layer++)
        {
            if (block < ResNet18.LayerBlocks[layer]) return (layer + 1, block);
            block -= ResNet18.LayerBlocks[layer];
        }
        return null;
    }

    /// <summary>
    /// Copies the ImageNet weights into <paramref name="model"/>'s backbone (every key but <c>fc</c>, which stays as
    /// initialised: the new head). Returns the number of tensors copied.
    /// </summary>
    public static int Load(ResNet18 model, string? modelPath = null)
    {
        var path = modelPath ?? DefaultModelPath;
        var onnx = Read(path);
        var map = Mapping(onnx);
        var initializers = onnx.Graph.Initializer.ToDictionary(t => t.Name);
        var state = model.state_dict();
        int copied = 0;
        using (no_grad())
        {
            foreach (var (key, target) in state)
            {
                if (key.StartsWith("fc.", StringComparison.Ordinal) || key.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
                if (!map.TryGetValue(key, out var name))
                    throw new InvalidDataException($"{path}: no initializer maps to '{key}'.");
                var source = initializers[name];
                var values = Floats(source, path);
                var shape = source.Dims.ToArray();
                if (!shape.SequenceEqual(target.shape))
                    throw new InvalidDataException($"{path}: initializer '{name}' for '{key}' has shape [{string.Join(", ", shape)}]; the module expects [{string.Join(", ", target.shape)}].");
                using var loaded = tensor(values, shape);
                target.copy_(loaded);
                copied++;
            }
        }
        return copied;
    }

    internal static ModelProto Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"The ResNet-18 model file {path} is missing. The package Microsoft.ML.DnnImageFeaturizer.ResNet18 copies DnnImageModels/ " +
                "into the application's output folder; reference it from the application project.", path);
        using var stream = File.OpenRead(path);
        return ModelProto.Parser.ParseFrom(stream);
    }

    static float[] Floats(TensorProto tensor, string path)
    {
        if (tensor.DataType != (int)TensorProto.Types.DataType.Float)
            throw new InvalidDataException($"{path}: initializer '{tensor.Name}' has ONNX data type {tensor.DataType}; expected float.");
        if (tensor.FloatData.Count > 0) return tensor.FloatData.ToArray();
        var bytes = tensor.RawData.Span;
        var values = new float[bytes.Length / 4];
        for (int i = 0; i < values.Length; i++)
            values[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(i * 4, 4));
        return values;
    }
}
