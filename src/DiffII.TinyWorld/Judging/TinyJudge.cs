using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Runtime;
using DiffII.Storage;
using DiffII.TinyWorld.Pretraining;
using TorchSharp;
using static TorchSharp.torch;
using Training = DiffII.Diffusion.Training;

namespace DiffII.TinyWorld.Judging;

/// <summary>Options of the judge's training. Defaults are the recipe of the committed judge.</summary>
public sealed record JudgeOptions
{
    /// <summary>Checkpoints; a rerun with the same folder resumes.</summary>
    public required string WorkFolder { get; init; }
    public long Seed { get; init; } = 20261206;
    public int Steps { get; init; } = 4000;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 2e-3;
    public int WarmupSteps { get; init; } = 200;
    public int Width { get; init; } = 32;
    public int CheckpointEvery { get; init; } = 500;
    public string? FashionMnistFolder { get; init; }
    /// <summary>Training-split items the judge must never see: every item any few-shot set of the experiment can draw.</summary>
    public IReadOnlySet<int> ExcludedItems { get; init; } = new HashSet<int>();
}

/// <summary>What the judge scored on real test pictures when it was trained (written next to its weights).</summary>
public sealed record JudgeCard(
    [property: JsonPropertyName("classes")] IReadOnlyList<string> Classes,
    [property: JsonPropertyName("width")] int Width,
    [property: JsonPropertyName("seed")] long Seed,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("excluded_items")] int ExcludedItems,
    [property: JsonPropertyName("test_per_class")] int TestPerClass,
    [property: JsonPropertyName("accuracy_in_distribution")] double AccuracyInDistribution,
    [property: JsonPropertyName("accuracy_shifted")] double AccuracyShifted,
    [property: JsonPropertyName("training_seconds")] double TrainingSeconds);

/// <summary>
/// The miniature's judge: a reference classifier trained on many real tiny-world pictures from every context (never
/// the experiment's few-shot items), used only to measure — how often a generated picture is recognised as the class
/// it was made for (faithfulness), and how much class a VAE round trip keeps. It is not a method arm and never trains
/// on synthetic images.
/// </summary>
public sealed class TinyJudge : IDisposable
{
    public const string WeightsFile = "judge.safetensors", CardFile = "judge.json";
    /// <summary>Test pictures per class and context the judge is scored on (Fashion-MNIST's test split, fixed seeds).</summary>
    public const int TestPerClass = 300;

    readonly TinyJudgeNet _net;
    public JudgeCard Card { get; }

    TinyJudge(TinyJudgeNet net, JudgeCard card) { _net = net; Card = card; net.eval(); }

    /// <summary>Class indices predicted for images [B, 3, 32, 32] in [−1, 1].</summary>
    public long[] Predict(Tensor images)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var predictions = new List<long>((int)images.shape[0]);
        for (long start = 0; start < images.shape[0]; start += 256)
        {
            var chunk = images.narrow(0, start, Math.Min(256, images.shape[0] - start)).to(ScalarType.Float32);
            predictions.AddRange(_net.forward(chunk).argmax(1).data<long>().ToArray());
        }
        return predictions.ToArray();
    }

    /// <summary>Fraction of <paramref name="samples"/> whose label the judge predicts.</summary>
    public double Accuracy(IReadOnlyList<TinyWorldSample> samples)
    {
        using var scope = NewDisposeScope();
        var predicted = Predict(TinyWorldData.ToTensor(samples));
        return predicted.Where((p, i) => p == samples[i].Label).Count() / (double)samples.Count;
    }

    /// <summary>
    /// Real test pictures: the first <paramref name="perClass"/> test-split items of each class in the given
    /// context, each with its own seeded scene (the same pictures on every call).
    /// </summary>
    public static IReadOnlyList<TinyWorldSample> TestPictures(FashionMnist test, SceneDistribution scenes, int perClass, long seed)
    {
        var samples = new List<TinyWorldSample>();
        for (int label = 0; label < FashionMnist.ClassNames.Count; label++)
            foreach (int item in Enumerable.Range(0, test.Count).Where(i => test.Labels[i] == label).Take(perClass))
            {
                var scene = scenes.Sample(new Random(unchecked((int)(seed * 7919 + item))));
                samples.Add(new TinyWorldSample(item, label, scene, SceneRenderer.Render(test.Item(item), scene)));
            }
        return samples;
    }

    public static IReadOnlyList<TinyWorldSample> InDistributionTest(FashionMnist test) => TestPictures(test, SceneDistribution.FewShot, TestPerClass, 9001);
    public static IReadOnlyList<TinyWorldSample> ShiftedTest(FashionMnist test) => TestPictures(test, SceneDistribution.Shifted, TestPerClass, 9002);

    /// <summary>Trains the judge (resuming from <see cref="JudgeOptions.WorkFolder"/>), then scores it on both test contexts.</summary>
    public static TinyJudge Train(JudgeOptions options, IProgress<PretrainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var train = FashionMnist.Load(FashionMnistSplit.Train, options.FashionMnistFolder);
        var test = FashionMnist.Load(FashionMnistSplit.Test, options.FashionMnistFolder);
        var pool = Enumerable.Range(0, train.Count).Where(i => !options.ExcludedItems.Contains(i)).ToArray();
        var data = new TinyWorldData(train, SceneDistribution.Everything, options.Seed, pool);

        manual_seed(options.Seed);
        var net = new TinyJudgeNet(FashionMnist.ClassNames.Count, options.Width);
        var optimizer = new Training.AdamW(net.parameters(), lr: options.LearningRate, weight_decay: 5e-4);
        var checkpoint = new TrainingCheckpoint(options.WorkFolder, "judge");
        var state = checkpoint.TryLoad(net, optimizer) ?? new StageState(0, []);
        var clock = Stopwatch.StartNew();
        double before = state.ElapsedSeconds, running = double.NaN;
        net.train();
        for (int step = state.Step; step < options.Steps; step++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                checkpoint.Save(net, optimizer, state with { Step = step, ElapsedSeconds = before + clock.Elapsed.TotalSeconds });
                cancellationToken.ThrowIfCancellationRequested();
            }
            using var scope = NewDisposeScope();
            var batch = data.Batch("judge", step, options.BatchSize);
            var images = TinyWorldData.ToTensor(batch);
            // Mirror half the pictures: a garment mirrored is the same garment.
            using var generator = new Generator((ulong)(options.Seed * 1000003 + step));
            var mirror = rand([options.BatchSize, 1, 1, 1], generator: generator).Lt(0.5);
            images = where(mirror, images.flip(3), images);
            var labels = tensor(batch.Select(b => (long)b.Label).ToArray());

            LearningRateSchedule.Apply(optimizer, LearningRateSchedule.WarmupCosine(step, options.Steps, options.WarmupSteps, options.LearningRate, floor: 0.01));
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(net.forward(images), labels, label_smoothing: 0.05);
            loss.backward();
            optimizer.step();

            double value = loss.item<float>();
            running = double.IsNaN(running) ? value : 0.98 * running + 0.02 * value;
            if ((step + 1) % 50 == 0) state.Losses.Add(new LossPoint(step + 1, running));
            progress?.Report(new PretrainProgress("judge", step + 1, options.Steps, running, TimeSpan.FromSeconds(before + clock.Elapsed.TotalSeconds)));
            if ((step + 1) % options.CheckpointEvery == 0 && step + 1 < options.Steps)
                checkpoint.Save(net, optimizer, state with { Step = step + 1, ElapsedSeconds = before + clock.Elapsed.TotalSeconds });
        }
        double seconds = before + clock.Elapsed.TotalSeconds;
        if (state.Step < options.Steps)
            checkpoint.Save(net, optimizer, state with { Step = options.Steps, ElapsedSeconds = seconds });

        var card = new JudgeCard(FashionMnist.ClassNames, options.Width, options.Seed, options.Steps, options.ExcludedItems.Count, TestPerClass, 0, 0, seconds);
        var judge = new TinyJudge(net, card);
        return new TinyJudge(net, card with
        {
            AccuracyInDistribution = judge.Accuracy(InDistributionTest(test)),
            AccuracyShifted = judge.Accuracy(ShiftedTest(test)),
        });
    }

    /// <summary>Writes the weights and the card into <paramref name="folder"/>.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        SafeTensorsFile.Save(Path.Combine(folder, WeightsFile), _net.state_dict());
        AtomicFile.WriteAllText(Path.Combine(folder, CardFile), JsonSerializer.Serialize(Card, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>A markdown card for the judge's folder: what it is for, its recipe, its scores, and the command.</summary>
    public string Describe(JudgeOptions options) => string.Join('\n',
        "# The tiny world's judge",
        "",
        "A reference classifier for the miniature, used only to measure: how often a generated picture is recognised as the class it",
        "was made for (faithfulness), how much class a VAE round trip keeps, and whether the generator draws the kind it is prompted",
        "with (`models/tiny-sd/gates.json`). It never trains on synthetic pictures and is not an arm of any experiment.",
        "",
        "## Recipe",
        "",
        $"- Network: `TinyJudgeNet`, a VGG-style CNN (widths {Card.Width}/{2 * Card.Width}/{4 * Card.Width}, batch norm, global average pooling), {_net.parameters().Sum(p => p.numel()):N0} parameters.",
        $"- Data: Fashion-MNIST's training split rendered as 32×32 tiny-world pictures in every context (`SceneDistribution.Everything`), mirrored at random;",
        $"  the {Card.ExcludedItems} items that any few-shot set with seeds 1–{FewShotItems.JudgeSeeds} and up to {FewShotItems.JudgeShots} shots can hold are left out.",
        $"- AdamW, lr {options.LearningRate} with {options.WarmupSteps} warm-up steps and cosine decay, weight decay 5e-4, label smoothing 0.05; {Card.Steps} steps of {options.BatchSize}; seed {Card.Seed}.",
        $"- {TimeSpan.FromSeconds(Card.TrainingSeconds):hh\\:mm\\:ss} of training on a 2-core CPU shared with other work.",
        "",
        "## Scores on real test pictures",
        "",
        $"Fashion-MNIST's test split, the first {TestPerClass} items of each class, rendered in the miniature's two test contexts:",
        "",
        "| context | accuracy |",
        "|---|---:|",
        $"| in-distribution (plain backgrounds, centred) | {100 * Card.AccuracyInDistribution:F1} % |",
        $"| shifted (patterned, coloured backgrounds) | {100 * Card.AccuracyShifted:F1} % |",
        "",
        "## Reproduce",
        "",
        "```bash",
        "sudo apt-get install dataset-fashion-mnist",
        $"dotnet run --project src/DiffII.Cli -c Release -- train-judge --work judge-work --out models/tiny-judge --seed {Card.Seed} --judge-steps {Card.Steps} --batch {options.BatchSize}",
        "```",
        "");

    /// <summary>Loads a judge written by <see cref="Save"/>.</summary>
    public static TinyJudge Load(string folder)
    {
        string cardPath = Path.Combine(folder, CardFile);
        if (!File.Exists(cardPath)) throw new FileNotFoundException($"No judge in {folder}: {CardFile} is missing.", cardPath);
        var card = JsonFile.ReadExisting<JudgeCard>(cardPath);
        var net = new TinyJudgeNet(card.Classes.Count, card.Width);
        StateDictLoader.LoadFile(net, Path.Combine(folder, WeightsFile));
        return new TinyJudge(net, card);
    }

    public void Dispose() => _net.Dispose();
}
