using System.Text.Json;
using System.Text.Json.Serialization;
using DiffII.Diffusion.Pipelines;
using DiffII.Storage;
using static TorchSharp.torch;

namespace DiffII.TinyWorld.Judging;

/// <summary>
/// The generator's gates that need no concept learning, measured with the judge (percent):
/// how much class a VAE round trip keeps, and whether a prompted kind comes out as a class of that kind.
/// </summary>
public sealed record GeneratorGateResults(
    [property: JsonPropertyName("judge_real_in")] double JudgeRealIn,
    [property: JsonPropertyName("judge_real_shifted")] double JudgeRealShifted,
    [property: JsonPropertyName("judge_vae_in")] double JudgeVaeIn,
    [property: JsonPropertyName("judge_vae_shifted")] double JudgeVaeShifted,
    [property: JsonPropertyName("vae_relative")] double VaeRelative,
    [property: JsonPropertyName("kind_prior")] double? KindPrior,
    [property: JsonPropertyName("kind_prior_per_kind")] IReadOnlyDictionary<string, double>? KindPriorPerKind)
{
    public void Write(string path) =>
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true }));
}

public static class GeneratorGates
{
    /// <summary>Contexts the kind-prior samples are drawn in (the model card's sample rows).</summary>
    public static IReadOnlyList<string> KindContexts => Pretraining.TinyModelCard.SampleSuffixes;

    /// <summary>
    /// Judge accuracy on real test pictures of both contexts, on their VAE reconstructions (posterior mean, decoded),
    /// and the ratio of the two; then, when <paramref name="samplesPerKind"/> &gt; 0, the kind prior: samples from
    /// noise prompted "a photo of a &lt;kind&gt; &lt;context&gt;" (DDIM 25 steps, CFG 7.5) judged as any class of that kind.
    /// </summary>
    public static GeneratorGateResults Measure(StableDiffusion sd, TinyJudge judge, FashionMnist test, int samplesPerKind = 0,
        long seed = 11, CancellationToken cancellationToken = default)
    {
        var inDistribution = TinyJudge.InDistributionTest(test);
        var shifted = TinyJudge.ShiftedTest(test);
        double realIn = judge.Accuracy(inDistribution), realShifted = judge.Accuracy(shifted);
        double vaeIn = ReconstructedAccuracy(sd, judge, inDistribution, cancellationToken);
        double vaeShifted = ReconstructedAccuracy(sd, judge, shifted, cancellationToken);

        double? prior = null;
        Dictionary<string, double>? perKind = null;
        if (samplesPerKind > 0)
        {
            perKind = [];
            for (int kind = 0; kind < ItemKinds.Words.Count; kind++)
            {
                var labels = ItemKinds.LabelsOf(kind).Select(l => (long)l).ToHashSet();
                int hits = 0;
                for (int i = 0; i < samplesPerKind; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var scope = NewDisposeScope();
                    string prompt = $"a photo of a {ItemKinds.Words[kind]} {KindContexts[i % KindContexts.Count]}";
                    using var generator = new Generator((ulong)(seed * 1000 + kind * 100 + i));
                    var noise = randn([1, sd.LatentChannels, sd.ImageSize / sd.Vae.DownscaleFactor, sd.ImageSize / sd.Vae.DownscaleFactor], generator: generator);
                    var latents = Sampling.Ddim(sd, noise, Sampling.Constant(sd.EncodePrompts([prompt])), sd.EncodePrompts([""]), 7.5, 25);
                    if (labels.Contains(judge.Predict(sd.DecodeLatents(latents))[0])) hits++;
                }
                perKind[ItemKinds.Words[kind]] = 100.0 * hits / samplesPerKind;
            }
            prior = perKind.Values.Average();
        }
        return new GeneratorGateResults(100 * realIn, 100 * realShifted, 100 * vaeIn, 100 * vaeShifted,
            100 * (vaeIn + vaeShifted) / (realIn + realShifted), prior, perKind);
    }

    static double ReconstructedAccuracy(StableDiffusion sd, TinyJudge judge, IReadOnlyList<TinyWorldSample> samples, CancellationToken cancellationToken)
    {
        int hits = 0;
        for (int start = 0; start < samples.Count; start += 100)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var chunk = samples.Skip(start).Take(100).ToList();
            var back = sd.DecodeLatents(sd.EncodeImages(TinyWorldData.ToTensor(chunk)));
            var predicted = judge.Predict(back);
            hits += predicted.Where((p, i) => p == chunk[i].Label).Count();
        }
        return hits / (double)samples.Count;
    }
}
