using DiffII.Diffusion.Runtime;
using Training = DiffII.Diffusion.Training;
using DiffII.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.MLNet.FineTuning;

/// <summary>
/// The fine-tuning run: per epoch a fresh replacement draw, shuffled batches with random resized crop and flip,
/// soft-label cross-entropy, warm-up plus cosine learning rate, optional early stopping, and a checkpoint that a
/// later run with the same options and data resumes from.
/// </summary>
/// <remarks>Every random choice after the head's initialisation comes from a <see cref="Random"/> seeded by (seed,
/// epoch), so an epoch resumed from a checkpoint makes the same draws as an uninterrupted run.</remarks>
internal sealed class FineTuneLoop(ResNet18FineTuneOptions options, TrainingSet data, float[] channelMeanBgr)
{
    const string CheckpointFile = "resnet18-finetune.ckpt";

    public int EpochsRun { get; private set; }
    public int? BestEpoch { get; private set; }
    public List<double> EpochLosses { get; } = [];
    /// <summary>The examples each epoch trained on, in training order (for inspection and tests).</summary>
    public List<List<int>> EpochPlans { get; } = [];

    public ResNet18 Run()
    {
        var device = Diffusion.Runtime.TorchRuntime.ParseDevice(options.Device);
        var dtype = options.DType == FineTuneDType.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        if (dtype == ScalarType.BFloat16 && device.type != DeviceType.CUDA)
            throw new ArgumentException($"DType BFloat16 needs a CUDA device (got '{options.Device}'); train in Float32 on the CPU.", nameof(options));

        random.manual_seed(options.Seed);
        var model = new ResNet18(data.NumClasses);
        ResNet18OnnxWeights.Load(model, options.InitialModelPath);
        model.to(device).to(dtype);
        var parameters = model.parameters().ToList();
        TorchSharp.Modules.OptimizerHelper optimizer = options.Optimizer == FineTuneOptimizer.AdamW
            ? new Training.AdamW(parameters, options.LearningRate, weight_decay: options.WeightDecay)
            : new Training.SGD(parameters, options.LearningRate, momentum: options.Momentum, weight_decay: options.WeightDecay);

        var heldOut = HeldOut();
        int trainCount = data.Originals.Count - heldOut.Count;
        int stepsPerEpoch = (trainCount + options.BatchSize - 1) / options.BatchSize;
        long totalSteps = (long)stepsPerEpoch * options.Epochs;
        long warmup = Math.Max(1, (long)Math.Round(options.WarmupFraction * totalSteps));
        using var mean = tensor(channelMeanBgr, [1, 3, 1, 1]).to(dtype, device);

        var state = new RunState();
        string? checkpoint = options.CheckpointDirectory is null ? null : Path.Combine(options.CheckpointDirectory, CheckpointFile);
        if (checkpoint is not null && File.Exists(checkpoint)) state = Resume(checkpoint, model, optimizer);
        long step = (long)state.EpochsDone * stepsPerEpoch;

        for (int epoch = state.EpochsDone; epoch < options.Epochs && !state.Stopped; epoch++)
        {
            options.CancellationToken.ThrowIfCancellationRequested();
            var rng = new Random(StableSeed.Of(options.Seed, epoch, 0x5eed));
            var plan = data.PlanForEpoch(epoch, options.ReplacementProbability, options.Seed, heldOut);
            for (int i = plan.Count - 1; i > 0; i--) { int j = rng.Next(i + 1); (plan[i], plan[j]) = (plan[j], plan[i]); }
            EpochPlans.Add(plan);
            model.train();
            double lossSum = 0;
            int batches = 0;
            for (int start = 0; start < plan.Count; start += options.BatchSize, step++)
            {
                options.CancellationToken.ThrowIfCancellationRequested();
                var batch = plan.GetRange(start, Math.Min(options.BatchSize, plan.Count - start));
                double lr = LearningRate(step, warmup, totalSteps);
                foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
                using var scope = NewDisposeScope();
                var x = Augment(batch, rng).to(dtype, device) - mean;
                var target = Targets(batch).to(dtype, device);
                optimizer.zero_grad();
                var logp = nn.functional.log_softmax(model.forward(x).to(ScalarType.Float32), 1);
                var loss = -(target.to(ScalarType.Float32) * logp).sum(1).mean();
                loss.backward();
                optimizer.step();
                double value = loss.item<float>();
                lossSum += value;
                batches++;
                options.Progress?.Report(new FineTuneProgress(epoch + 1, options.Epochs, batches, stepsPerEpoch, value, lr));
            }
            EpochLosses.Add(lossSum / Math.Max(1, batches));
            double? accuracy = null;
            if (heldOut.Count > 0)
            {
                accuracy = Accuracy(model, heldOut, mean, device, dtype);
                if (accuracy > state.BestAccuracy)
                {
                    state.BestAccuracy = accuracy.Value;
                    state.BestEpoch = epoch + 1;
                    state.BestWeights = Snapshot(model);
                    state.BadEpochs = 0;
                }
                else if (++state.BadEpochs >= options.EarlyStoppingPatience) state.Stopped = true;
            }
            state.EpochsDone = epoch + 1;
            EpochsRun++;
            options.Progress?.Report(new FineTuneProgress(epoch + 1, options.Epochs, batches, stepsPerEpoch, EpochLosses[^1], LearningRate(step, warmup, totalSteps), accuracy));
            if (checkpoint is not null) Save(checkpoint, state, model, optimizer);
        }
        if (state.BestWeights is not null)
        {
            using var _ = no_grad();
            var current = model.state_dict();
            foreach (var (key, value) in state.BestWeights) current[key].copy_(value);
            BestEpoch = state.BestEpoch;
        }
        model.eval();
        return model.to(CPU, ScalarType.Float32);
    }

    double LearningRate(long step, long warmup, long total)
    {
        if (step < warmup) return options.LearningRate * (step + 1) / warmup;
        double progress = total <= warmup ? 1 : (double)(step - warmup) / (total - warmup);
        return options.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, progress)));
    }

    HashSet<int> HeldOut()
    {
        var held = new HashSet<int>();
        if (options.ValidationFraction <= 0) return held;
        var random = new Random(StableSeed.Of(options.Seed, 0x7a11d));
        var order = data.Originals.ToArray();
        random.Shuffle(order);
        int count = (int)Math.Round(options.ValidationFraction * order.Length);
        if (count >= order.Length) throw new ArgumentException($"ValidationFraction {options.ValidationFraction} leaves no original to train on.", nameof(options));
        foreach (var i in order.Take(count)) held.Add(i);
        return held;
    }

    /// <summary>Random resized crop (area share in [CropScaleMin, 1], log-uniform aspect in [3/4, 4/3]) and flip, [B, 3, S, S] floats 0–255.</summary>
    Tensor Augment(List<int> batch, Random rng)
    {
        int s = data.ImageSize;
        var images = new List<Tensor>(batch.Count);
        foreach (var example in batch)
        {
            var image = tensor(data.Pixels[example], [1, 3, s, s]).to(ScalarType.Float32);
            var (top, left, h, w) = CropBox(rng, s);
            var crop = image[.., .., top..(top + h), left..(left + w)];
            var resized = nn.functional.interpolate(crop, [s, s], mode: InterpolationMode.Bilinear, align_corners: false);
            if (options.RandomHorizontalFlip && rng.NextDouble() < 0.5) resized = resized.flip(3);
            images.Add(resized);
        }
        return cat(images, 0);
    }

    /// <summary>torchvision's RandomResizedCrop box: ten tries at a random area and aspect, then the whole image.</summary>
    (int Top, int Left, int Height, int Width) CropBox(Random rng, int s)
    {
        double area = (double)s * s;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (options.CropScaleMin + rng.NextDouble() * (1 - options.CropScaleMin));
            double aspect = Math.Exp(Math.Log(3.0 / 4) + rng.NextDouble() * (Math.Log(4.0 / 3) - Math.Log(3.0 / 4)));
            int w = (int)Math.Round(Math.Sqrt(target * aspect)), h = (int)Math.Round(Math.Sqrt(target / aspect));
            if (w > 0 && h > 0 && w <= s && h <= s)
                return (rng.Next(s - h + 1), rng.Next(s - w + 1), h, w);
        }
        return (0, 0, s, s);
    }

    Tensor Targets(List<int> batch)
    {
        var flat = new float[batch.Count * data.NumClasses];
        for (int i = 0; i < batch.Count; i++) data.Targets[batch[i]].CopyTo(flat, i * data.NumClasses);
        return tensor(flat, [batch.Count, data.NumClasses]);
    }

    double Accuracy(ResNet18 model, HashSet<int> examples, Tensor mean, Device device, ScalarType dtype)
    {
        model.eval();
        int correct = 0;
        var list = examples.Order().ToList();
        using var _ = no_grad();
        for (int start = 0; start < list.Count; start += options.BatchSize)
        {
            using var scope = NewDisposeScope();
            var batch = list.GetRange(start, Math.Min(options.BatchSize, list.Count - start));
            int s = data.ImageSize;
            var x = cat(batch.Select(e => tensor(data.Pixels[e], [1, 3, s, s]).to(ScalarType.Float32)).ToList(), 0).to(dtype, device) - mean;
            var predicted = model.forward(x).argmax(1).cpu().data<long>().ToArray();
            for (int i = 0; i < batch.Count; i++)
                if (predicted[i] == Array.IndexOf(data.Targets[batch[i]], data.Targets[batch[i]].Max())) correct++;
        }
        model.train();
        return (double)correct / list.Count;
    }

    static Dictionary<string, Tensor> Snapshot(ResNet18 model) =>
        model.state_dict().ToDictionary(p => p.Key, p => { var t = p.Value.detach().clone(); t.DetachFromDisposeScope(); return t; });

    sealed class RunState
    {
        public int EpochsDone;
        public double BestAccuracy = double.NegativeInfinity;
        public int? BestEpoch;
        public int BadEpochs;
        public bool Stopped;
        public Dictionary<string, Tensor>? BestWeights;
    }

    /// <summary>What a checkpoint must match to be resumed: the data and every option that shapes the run.</summary>
    string Fingerprint() => string.Join("|", data.Pixels.Count, data.NumClasses, data.ImageSize, options.BatchSize, options.Epochs,
        options.Optimizer, options.LearningRate, options.WeightDecay, options.Momentum, options.WarmupFraction, options.CropScaleMin,
        options.RandomHorizontalFlip, options.ValidationFraction, options.EarlyStoppingPatience, options.ReplacementProbability, options.Seed, options.DType);

    void Save(string path, RunState state, ResNet18 model, TorchSharp.Modules.OptimizerHelper optimizer)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = path + ".tmp";
        using (var writer = new BinaryWriter(File.Create(temp)))
        {
            writer.Write(Fingerprint());
            writer.Write(state.EpochsDone);
            writer.Write(state.BestAccuracy);
            writer.Write(state.BestEpoch ?? 0);
            writer.Write(state.BadEpochs);
            writer.Write(state.Stopped);
            model.save(writer);
            optimizer.save_state_dict(writer);
            writer.Write(state.BestWeights is not null);
            if (state.BestWeights is not null)
            {
                using var best = new ResNet18(data.NumClasses);
                using (no_grad()) foreach (var (key, value) in best.state_dict()) value.copy_(state.BestWeights[key]);
                best.save(writer);
            }
        }
        File.Move(temp, path, overwrite: true);
    }

    RunState Resume(string path, ResNet18 model, TorchSharp.Modules.OptimizerHelper optimizer)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        string fingerprint = reader.ReadString();
        if (fingerprint != Fingerprint())
            throw new InvalidDataException($"The checkpoint {path} belongs to another run (different data or options: {fingerprint} vs {Fingerprint()}); " +
                                           "delete it or choose another CheckpointDirectory.");
        var state = new RunState
        {
            EpochsDone = reader.ReadInt32(),
            BestAccuracy = reader.ReadDouble(),
            BestEpoch = reader.ReadInt32() is var e and > 0 ? e : null,
            BadEpochs = reader.ReadInt32(),
            Stopped = reader.ReadBoolean(),
        };
        model.load(reader);
        optimizer.load_state_dict(reader);
        if (reader.ReadBoolean())
        {
            using var best = new ResNet18(data.NumClasses);
            best.load(reader);
            state.BestWeights = Snapshot(best);
        }
        return state;
    }
}
