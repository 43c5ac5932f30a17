using DiffII.MLNet.FineTuning;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Bench;

/// <summary>
/// The ResNet-18 fine-tuning trainer's cost per image at 64, 112 and 224 px: a training step (forward, soft-label
/// cross-entropy, backward, AdamW step) and inference, both in TorchSharp and through ONNX Runtime as the fitted ML.NET
/// model scores (one image per call, as OnnxTransformer runs it). GFLOP/s are set against the run's measured conv peak.
/// </summary>
/// <remarks>Decoding and augmentation are left out: they are ML.NET's image transforms and a crop per image, small next
/// to the network at these sizes.</remarks>
public sealed class FineTuneBench(Harness harness, BenchReport report, TextWriter log)
{
    public const string Model = "resnet18-finetune";
    public static readonly int[] DefaultResolutions = [64, 112, 224];

    public void Run(IReadOnlyList<int> resolutions, int batch, ScalarType dtype)
    {
        if (harness.Device.type != DeviceType.CPU && dtype == ScalarType.Float32) log.WriteLine("  (ONNX Runtime inference is measured on the CPU: the fitted model scores there)");
        double? convPeak = report.Peaks.Where(p => p.Name == "conv").Select(p => (double?)p.GflopPerSecond).FirstOrDefault();
        const int classes = 10;
        random.manual_seed(0);
        using var model = new ResNet18(classes);
        if (File.Exists(ResNet18OnnxWeights.DefaultModelPath)) ResNet18OnnxWeights.Load(model);
        model.to(harness.Device).to(dtype);
        var mean = File.Exists(ResNet18OnnxWeights.DefaultPreprocessPath) ? ResNet18OnnxWeights.ChannelMeanBgr() : new float[3];
        foreach (int size in resolutions)
        {
            log.WriteLine($"resnet18 fine-tuning at {size} px, batch {batch}");
            var g = new Generator((ulong)size, harness.Device);
            using var x = (rand([batch, 3, size, size], dtype: dtype, device: harness.Device, generator: g) * 255).DetachFromDisposeScope();
            using var target = nn.functional.one_hot(randint(classes, [batch], dtype: ScalarType.Int64, device: harness.Device, generator: g), classes).to(dtype);
            double forwardFlops;
            using (var counter = new FlopCounter(model))
            {
                using var _ = no_grad();
                model.eval();
                model.forward(x).Dispose();
                forwardFlops = counter.Total;
            }
            // Backward costs about twice the forward (gradients for inputs and for weights).
            double trainFlops = 3 * forwardFlops;

            var optimizer = optim.AdamW(model.parameters(), 1e-4);
            Action step = () =>
            {
                optimizer.zero_grad();
                var logp = nn.functional.log_softmax(model.forward(x), 1);
                var loss = -(target * logp).sum(1).mean();
                loss.backward();
                optimizer.step();
            };
            model.train();
            var timing = harness.Measure($"train step {size} px b{batch}", step, harness.TimeOnce(step));
            Add(size, "finetune-train-step", batch, timing, trainFlops, convPeak, "forward, soft-label cross-entropy, backward, AdamW step; GFLOP counts 3 × forward");

            model.eval();
            Action infer = () => { using var _ = no_grad(); model.forward(x); };
            timing = harness.Measure($"torch inference {size} px b{batch}", infer, harness.TimeOnce(infer));
            Add(size, "finetune-infer-torch", batch, timing, forwardFlops, convPeak, null);

            if (dtype == ScalarType.Float32)
            {
                using var cpuModel = new ResNet18(classes);
                using (no_grad()) foreach (var (key, value) in cpuModel.state_dict()) value.copy_(model.state_dict()[key].cpu());
                // As many threads as torch uses, so both inference rows and the conv peak share the same cores.
                using var sessionOptions = new SessionOptions { IntraOpNumThreads = get_num_threads(), InterOpNumThreads = 1 };
                using var session = new InferenceSession(ResNet18OnnxExport.Export(cpuModel, size, mean), sessionOptions);
                var one = new DenseTensor<float>(x[0].cpu().data<float>().ToArray(), [1, 3, size, size]);
                Action onnx = () => { using var r = session.Run([NamedOnnxValue.CreateFromTensor(ResNet18OnnxExport.InputName, one)]); };
                timing = harness.Measure($"onnx runtime inference {size} px b1", onnx, harness.TimeOnce(onnx));
                Add(size, "finetune-infer-onnx", 1, timing, forwardFlops / batch, convPeak, "the fitted ML.NET model's scorer (OnnxTransformer), one image per call, ONNX Runtime with torch's thread count");
            }
            optimizer.Dispose();
            g.Dispose();
        }
    }

    void Add(int size, string stage, int batch, Timing timing, double flops, double? convPeak, string? note)
    {
        double rate = flops / timing.Median / 1e9;
        report.Stages.Add(new StageResult
        {
            Model = Model, Resolution = size, Stage = stage, Batch = batch, Repetitions = timing.Seconds.Count,
            MedianSeconds = timing.Median, MinSeconds = timing.Min, SamplesPerSecond = batch / timing.Median,
            Gflop = flops / 1e9, GflopPerSecond = rate,
            // Against the conv peak, not the best of matmul and conv: a ResNet is convolutions.
            FractionOfPeak = convPeak is double p ? rate / p : null,
            PeakRssBytes = timing.PeakRss, RssIncreaseBytes = timing.RssIncrease,
            Note = note is null ? "of peak: the run's conv peak" : note + "; of peak: the run's conv peak",
        });
    }
}
