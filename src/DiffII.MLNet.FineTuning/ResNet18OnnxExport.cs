using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace DiffII.MLNet.FineTuning;

/// <summary>
/// Writes a (fine-tuned) <see cref="ResNet18"/> as an ONNX model that ML.NET's OnnxTransformer scores: input
/// <see cref="InputName"/> [1, 3, S, S] (BGR, 0–255, as <c>ExtractPixels</c> with <c>ColorsOrder.ABGR</c> gives it), output
/// <see cref="ScoreName"/> [1, K] (softmax probabilities). The graph is the module's own inference computation: channel-mean
/// subtraction, convolutions with symmetric padding, batch norm with its running statistics, global average pooling, fc.
/// </summary>
/// <remarks>This is how the weights get inside the ML.NET model zip: ML.NET's saving API (ModelSaveContext) is not open
/// to other assemblies, but OnnxTransformer stores its model's bytes in the zip.</remarks>
public static class ResNet18OnnxExport
{
    /// <summary>The same name as the pixel column: OnnxTransformer binds columns to graph inputs by name.</summary>
    public const string InputName = ImageColumns.PixelsColumn;
    public const string ScoreName = "Score";
    const int Opset = 13;

    public static byte[] Export(ResNet18 model, int imageSize, float[] channelMeanBgr)
    {
        var graph = new GraphProto { Name = "DiffII.ResNet18FineTuned" };
        var state = model.state_dict();
        void Init(string name, Tensor value)
        {
            using var cpu = value.detach().to(ScalarType.Float32).cpu().contiguous();
            var floats = cpu.data<float>().ToArray();
            var bytes = new byte[floats.Length * 4];
            Buffer.BlockCopy(floats, 0, bytes, 0, bytes.Length);
            var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(bytes) };
            t.Dims.AddRange(cpu.shape);
            graph.Initializer.Add(t);
        }
        string Node(string op, string output, IEnumerable<string> inputs, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = output };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            graph.Node.Add(node);
            return output;
        }
        string ConvBn(string x, string conv, string bn, long stride, long pad)
        {
            Init(conv + ".weight", state[conv + ".weight"]);
            var k = state[conv + ".weight"].shape[2];
            var y = Node("Conv", conv, [x, conv + ".weight"], Ints("kernel_shape", k, k), Ints("strides", stride, stride), Ints("pads", pad, pad, pad, pad));
            foreach (var p in new[] { "weight", "bias", "running_mean", "running_var" }) Init($"{bn}.{p}", state[$"{bn}.{p}"]);
            return Node("BatchNormalization", bn, [y, bn + ".weight", bn + ".bias", bn + ".running_mean", bn + ".running_var"], Float("epsilon", 1e-5f));
        }

        using (var mean = tensor(channelMeanBgr, [1, 3, 1, 1])) Init("channel_mean_bgr", mean);
        var x = Node("Sub", "normalized", [InputName, "channel_mean_bgr"]);
        x = Node("Relu", "relu", [ConvBn(x, "conv1", "bn1", 2, 3)]);
        x = Node("MaxPool", "maxpool", [x], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1));
        for (int layer = 1; layer <= 4; layer++)
            for (int block = 0; block < ResNet18.LayerBlocks[layer - 1]; block++)
            {
                string p = $"layer{layer}.{block}.";
                long stride = layer > 1 && block == 0 ? 2 : 1;
                var y = Node("Relu", p + "relu1", [ConvBn(x, p + "conv1", p + "bn1", stride, 1)]);
                y = ConvBn(y, p + "conv2", p + "bn2", 1, 1);
                var shortcut = state.ContainsKey(p + "downsample.0.weight") ? ConvBn(x, p + "downsample.0", p + "downsample.1", stride, 0) : x;
                x = Node("Relu", p + "relu2", [Node("Add", p + "add", [y, shortcut])]);
            }
        x = Node("Flatten", "flatten", [Node("GlobalAveragePool", "avgpool", [x])], Int("axis", 1));
        Init("fc.weight", state["fc.weight"]);
        Init("fc.bias", state["fc.bias"]);
        x = Node("Gemm", "fc", [x, "fc.weight", "fc.bias"], Int("transB", 1));
        Node("Softmax", ScoreName, [x], Int("axis", 1));

        graph.Input.Add(Value(InputName, 1, 3, imageSize, imageSize));
        graph.Output.Add(Value(ScoreName, 1, model.NumClasses));
        var onnx = new ModelProto { IrVersion = 7, ProducerName = "DiffII.MLNet.FineTuning", Graph = graph };
        onnx.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return onnx.ToByteArray();
    }

    static ValueInfoProto Value(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
    static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
}
