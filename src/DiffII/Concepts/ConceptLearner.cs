using System.Diagnostics;
using System.Text.Json;
using DiffII.Augmentation;
using DiffII.Diffusion;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Lora;
using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.Schedulers;
using DiffII.Storage;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Training = DiffII.Diffusion.Training;

namespace DiffII.Concepts;

/// <summary>Options of concept learning (the Diff-Mix recipe the paper follows).</summary>
public sealed record ConceptOptions
{
    /// <summary>
    /// The dataset's theme word(s) in the prompt: "bird", "aircraft", "clothing item". Inside
    /// <see cref="AugmentationOptions"/> leave it empty: the run's <see cref="AugmentationOptions.Metaclass"/> is used.
    /// </summary>
    public string Metaclass { get; init; } = "";
    /// <summary>Train LoRA on the U-Net attentions too (false: tokens only, DA-Fusion style).</summary>
    public bool TrainLora { get; init; } = true;
    public int LoraRank { get; init; } = 10;
    public double LoraLearningRate { get; init; } = 5e-5;
    public double TokenLearningRate { get; init; } = 5e-5;
    public int Steps { get; init; } = 1000;
    public int BatchSize { get; init; } = 8;
    public double WeightDecay { get; init; } = 1e-2;
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Random horizontal flips of the training images (precomputed: both views are encoded once).</summary>
    public bool RandomFlip { get; init; } = true;
    public int CheckpointEvery { get; init; } = 200;
    public long Seed { get; init; }

    /// <summary>The placeholder token of class <paramref name="classIndex"/>.</summary>
    public static string Placeholder(int classIndex) => $"<class_{classIndex}>";

    /// <summary>The learned prompt "a photo of a &lt;class_i&gt; &lt;metaclass&gt;".</summary>
    public string Prompt(int classIndex) => $"a photo of a {Placeholder(classIndex)} {Metaclass}";
}

/// <summary>Concept learning met a NaN or infinite loss; nothing of that step was saved (the last checkpoint, if any, is intact).</summary>
public sealed class NonFiniteLossException(int step, double loss) : InvalidOperationException(
    $"Concept learning stopped at step {step}: the loss became {loss.ToString(System.Globalization.CultureInfo.InvariantCulture)} " +
    $"(the loss or its gradient, on {ConceptLearner.MaxNonFiniteRetries + 1} tries of the same batch). Nothing of this step was saved; " +
    "a rerun resumes from the last checkpoint. Lower the learning rates, use float32, or check the images and the model.")
{
    public int Step { get; } = step;
}

public sealed record ConceptProgress(int Step, int TotalSteps, double Loss, TimeSpan Elapsed);

/// <summary>The state of a concept-learning run, saved beside its checkpoint.</summary>
public sealed record ConceptTrainingState(int Step, List<double> Losses, double ElapsedSeconds);

/// <summary>
/// Step 1 of Diff-II (paper Sec. 3.1, the Diff-Mix recipe): one placeholder token per class, initialised from the
/// metaclass word, plus LoRA on every U-Net attention, trained with the ε-prediction loss on the class's images.
/// Only the new token rows and the LoRA matrices learn; everything else stays frozen. Each image is VAE-encoded once
/// (mean and std of both its views), and every step draws a fresh latent sample from them.
/// </summary>
public static class ConceptLearner
{
    /// <summary>How many times one step is retried after a non-finite loss or gradient before learning stops.</summary>
    public const int MaxNonFiniteRetries = Training.NonFiniteSteps.MaxRetries;

    /// <param name="imagesByClass">Per class, its training images at model resolution ([3, H, W] in [−1, 1]).</param>
    /// <param name="workFolder">Checkpoints go to <c>workFolder/concepts-checkpoint</c>; a rerun resumes there.</param>
    public static LearnedConcepts Learn(StableDiffusion sd, IReadOnlyList<string> classNames, IReadOnlyList<IReadOnlyList<Tensor>> imagesByClass,
        ConceptOptions options, string workFolder, IProgress<ConceptProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(options.Metaclass))
            throw new ArgumentException("ConceptOptions.Metaclass is empty: the learned prompt is \"a photo of a <class_i> <metaclass>\"; set it (e.g. \"bird\").", nameof(options));
        if (classNames.Count != imagesByClass.Count) throw new ArgumentException("One image list per class is needed.");
        for (int c = 0; c < classNames.Count; c++)
            if (imagesByClass[c].Count == 0) throw new ArgumentException($"Class '{classNames[c]}' has no images.");

        var concepts = LearnedConcepts.Initialise(sd, classNames, options.Metaclass);
        using var initGenerator = new Generator((ulong)options.Seed + 17);
        var trainable = concepts.BeginTraining(sd, options.TrainLora ? options.LoraRank : 0, initGenerator);

        var groups = new List<AdamW.ParamGroup> { new(trainable.TokenRows.ToList(), lr: options.TokenLearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: options.WeightDecay) };
        if (trainable.Lora is not null)
            groups.Add(new AdamW.ParamGroup(trainable.Lora.Parameters().ToList(), lr: options.LoraLearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: options.WeightDecay));
        var optimizer = new Training.AdamW(groups);
        var allParameters = groups.SelectMany(g => g.Parameters).ToList();

        string checkpointFolder = Path.Combine(workFolder, "concepts-checkpoint");
        var state = TryResume(checkpointFolder, concepts, trainable, optimizer) ?? new ConceptTrainingState(0, [], 0);

        // Encode every image (and its mirror) once: the posterior mean and std per view.
        var (means, stds, classOfView) = EncodeViews(sd, imagesByClass, options.RandomFlip);
        var prompts = Enumerable.Range(0, classNames.Count).Select(options.Prompt).ToArray();
        var promptIds = sd.Tokenizer.EncodeBatch(prompts, sd.Device);

        var clock = Stopwatch.StartNew();
        var nonFinite = new Training.NonFiniteSteps((at, value) => new NonFiniteLossException(at, value));
        sd.Unet.train();
        try
        {
            for (int step = state.Step; step < options.Steps; step++)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    SaveCheckpoint(checkpointFolder, concepts, trainable, optimizer, state with { Step = step, ElapsedSeconds = state.ElapsedSeconds + clock.Elapsed.TotalSeconds });
                    cancellationToken.ThrowIfCancellationRequested();
                }
                using var scope = NewDisposeScope();
                var random = new Random(StableSeed.Of(options.Seed, 1, step));
                using var generator = new Generator((ulong)StableSeed.Hash(options.Seed, 2, step), sd.Device);
                var picks = Enumerable.Range(0, options.BatchSize).Select(_ => random.Next(classOfView.Length)).ToArray();
                var index = tensor(picks.Select(p => (long)p).ToArray(), ScalarType.Int64, sd.Device);
                var mean = means.index_select(0, index);
                var std = stds.index_select(0, index);
                var latents = mean.Add(std * randn(mean.shape, dtype: mean.dtype, device: sd.Device, generator: generator)).Mul(sd.Vae.ScalingFactor);
                var noise = randn(latents.shape, dtype: latents.dtype, device: sd.Device, generator: generator);
                var timesteps = TrainingNoise.SampleTimesteps(sd.Schedule, options.BatchSize, sd.Device, generator);
                var noisy = TrainingNoise.AddNoise(sd.Schedule, latents, noise, timesteps);
                // The text encoder runs once per class in the batch, not once per sample; samples take their class's row.
                var classesInBatch = picks.Select(p => classOfView[p]).Distinct().ToArray();
                var ids = promptIds.index_select(0, tensor(classesInBatch.Select(c => (long)c).ToArray(), ScalarType.Int64, sd.Device));
                var rowOfSample = tensor(picks.Select(p => (long)Array.IndexOf(classesInBatch, classOfView[p])).ToArray(), ScalarType.Int64, sd.Device);

                optimizer.zero_grad();
                var text = sd.TextEncoder.forward(ids).index_select(0, rowOfSample);
                var prediction = sd.Unet.forward(noisy, timesteps, text);
                var target = TrainingNoise.Target(sd.Schedule, latents, noise, timesteps);
                var loss = nn.functional.mse_loss(prediction.to(ScalarType.Float32), target.to(ScalarType.Float32));
                loss.backward();
                double gradientNorm = nn.utils.clip_grad_norm_(allParameters, options.MaxGradNorm);
                double value = loss.item<float>();
                // Checked before the update, so the weights are untouched; the step is tried again on the same batch
                // (as mixed-precision trainers skip a step whose gradients overflowed). One-off NaNs in runs that were
                // bit-identical until then came from TorchSharp objects freed mid-call: Scalars (fixed: KeptScalars),
                // then, most likely, temporary tensors (HeldTensors, which the augmenter holds around this). The retry
                // stays as a net, counted (LearnedConcepts.RetriedSteps). A value that stays non-finite on the same
                // batch and weights is divergence: stop, saving nothing.
                if (nonFinite.Retry(step, value, gradientNorm))
                {
                    optimizer.zero_grad();
                    step--;
                    continue;
                }
                optimizer.step();
                state.Losses.Add(value);
                progress?.Report(new ConceptProgress(step + 1, options.Steps, value, TimeSpan.FromSeconds(state.ElapsedSeconds + clock.Elapsed.TotalSeconds)));
                if ((step + 1) % options.CheckpointEvery == 0 && step + 1 < options.Steps)
                    SaveCheckpoint(checkpointFolder, concepts, trainable, optimizer, state with { Step = step + 1, ElapsedSeconds = state.ElapsedSeconds + clock.Elapsed.TotalSeconds });
            }
        }
        catch
        {
            // Stopped (or failed): leave the model as it was, bar the added tokens, so the caller can resume with it
            // or generate with it without a half-trained LoRA still in its forward pass.
            trainable.Lora?.Dispose();
            sd.TextEncoder.StopTrainingTokenRows();
            throw;
        }
        finally
        {
            sd.Unet.eval();
        }
        concepts.EndTraining(sd, trainable, state.Losses, nonFinite.RetriedSteps);
        return concepts;
    }

    static (Tensor Means, Tensor Stds, int[] ClassOfView) EncodeViews(StableDiffusion sd, IReadOnlyList<IReadOnlyList<Tensor>> imagesByClass, bool flip)
    {
        using var _ = no_grad();
        // A scope holds every temporary (the flipped views, the casts) until the end, so none can be finalized while
        // libtorch still reads it; the two results move out of it.
        using var scope = NewDisposeScope();
        var means = new List<Tensor>();
        var stds = new List<Tensor>();
        var classes = new List<int>();
        for (int c = 0; c < imagesByClass.Count; c++)
            foreach (var image in imagesByClass[c])
                foreach (var view in flip ? new[] { image, image.flip(2) } : new[] { image })
                {
                    using var posterior = sd.Vae.Encode(view.unsqueeze(0).to(sd.DType, sd.Device));
                    means.Add(posterior.Mean.clone());
                    stds.Add(posterior.Std.clone());
                    classes.Add(c);
                }
        return (scope.MoveToOuter(cat(means)), scope.MoveToOuter(cat(stds)), classes.ToArray());
    }

    static void SaveCheckpoint(string folder, LearnedConcepts concepts, ConceptTraining trainable, OptimizerHelper optimizer, ConceptTrainingState state)
    {
        Directory.CreateDirectory(folder);
        trainable.Lora?.Save(Path.Combine(folder, LearnedConcepts.LoraFile));
        SafeTensorsFile.Save(Path.Combine(folder, LearnedConcepts.EmbeddingsFile), concepts.TokenRowsByName(trainable.TokenRows));
        string optimizerPath = Path.Combine(folder, "optimizer.bin");
        optimizer.save_state_dict(optimizerPath + AtomicFile.TempSuffix);
        File.Move(optimizerPath + AtomicFile.TempSuffix, optimizerPath, overwrite: true);
        AtomicFile.WriteAllText(Path.Combine(folder, "state.json"), JsonSerializer.Serialize(state));
    }

    static ConceptTrainingState? TryResume(string folder, LearnedConcepts concepts, ConceptTraining trainable, OptimizerHelper optimizer)
    {
        string statePath = Path.Combine(folder, "state.json");
        if (JsonFile.Read<ConceptTrainingState>(statePath) is not { } state) return null;
        var rows = SafeTensorsFile.LoadAll(Path.Combine(folder, LearnedConcepts.EmbeddingsFile));
        using (no_grad())
            for (int c = 0; c < concepts.ClassNames.Count; c++)
                trainable.TokenRows[0][c].copy_(rows[concepts.Tokens[c]]);
        if (trainable.Lora is not null)
        {
            var saved = SafeTensorsFile.LoadAll(Path.Combine(folder, LearnedConcepts.LoraFile));
            using var _ = no_grad();
            foreach (var (key, value) in trainable.Lora.StateDict()) value.copy_(saved[key]);
        }
        optimizer.load_state_dict(Path.Combine(folder, "optimizer.bin"));
        return state;
    }
}
