using System.Text.Json;
using DiffII.Concepts;
using DiffII.Denoising;
using DiffII.Diffusion.Runtime;
using DiffII.Storage;
using static TorchSharp.torch;

namespace DiffII.Experiments.Tiny;

/// <summary>What the concept gate measured for one set of learned concepts, cached beside them.</summary>
internal sealed record ConceptGateResult(int SamplesPerClass, int Steps, double GuidanceScale, double Agreement, IReadOnlyList<double> PerClass);

public sealed partial class TinyExperiment
{
    /// <summary>The concept gate's own stream of seeds, apart from every other draw of a run.</summary>
    const long ConceptGateStream = 0x636f6e63;

    /// <summary>Where the concept gate of the concepts in <paramref name="conceptsFolder"/> is cached.</summary>
    static string ConceptGatePath(string conceptsFolder) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(conceptsFolder))!, "concept-from-noise.json");

    /// <summary>
    /// The concept gate (issue 16's <c>concept_from_noise</c>): per class, samples from pure noise prompted with the
    /// learned prompt alone ("a photo of a &lt;class_i&gt; clothing item", the concepts' tokens and LoRA, no suffix),
    /// DDIM at the experiment's sample steps and guidance, and the share the judge recognises as class i. No
    /// inversion and no original picture is involved, so it measures what the concepts carry on their own.
    /// Null without a judge or with <see cref="TinyExperimentOptions.ConceptSamplesPerClass"/> 0.
    /// </summary>
    internal double? ConceptFromNoise(string conceptsFolder, long seed, IProgress<ExperimentProgress>? progress, CancellationToken cancellationToken)
    {
        int perClass = options.ConceptSamplesPerClass;
        if (_judge is null || perClass <= 0) return null;
        string path = ConceptGatePath(conceptsFolder);
        if (JsonFile.Read<ConceptGateResult>(path) is { } saved
            && saved.SamplesPerClass == perClass && saved.Steps == options.SampleSteps && saved.GuidanceScale == options.GuidanceScale)
            return saved.Agreement;

        using var sd = LoadGenerator();
        var concepts = LearnedConcepts.Load(conceptsFolder);
        using var lora = concepts.ApplyTo(sd, mergeLora: true);
        int size = sd.ImageSize / sd.Vae.DownscaleFactor;
        var perClassAgreement = new List<double>();
        string stage = $"concept gate {Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(conceptsFolder)))}";
        for (int c = 0; c < concepts.ClassNames.Count; c++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Report(new ExperimentProgress(stage, c, concepts.ClassNames.Count));
            using var scope = NewDisposeScope();
            using var generator = new Generator(StableSeed.Hash(seed, ConceptGateStream, c), CPU);
            var noise = randn([perClass, sd.LatentChannels, size, size], generator: generator).to(_device);
            var latents = TwoStageDenoiser.Denoise(sd, noise, Enumerable.Repeat(concepts.Prompt(c), perClass).ToList(),
                Enumerable.Repeat<string?>(null, perClass).ToList(), 0, options.SampleSteps, options.GuidanceScale, cancellationToken: cancellationToken);
            var predicted = _judge.Predict(sd.DecodeLatents(latents));
            perClassAgreement.Add(predicted.Count(p => FewShotWorld.Classes[(int)p] == concepts.ClassNames[c]) / (double)perClass);
        }
        progress?.Report(new ExperimentProgress(stage, concepts.ClassNames.Count, concepts.ClassNames.Count));
        var result = new ConceptGateResult(perClass, options.SampleSteps, options.GuidanceScale, perClassAgreement.Average(), perClassAgreement);
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        return result.Agreement;
    }
}
