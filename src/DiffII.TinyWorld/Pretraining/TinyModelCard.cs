using System.Globalization;
using System.Text;
using System.Text.Json;
using DiffII.Diffusion.Pipelines;
using DiffII.Imaging;
using DiffII.Reporting;
using TorchSharp;
using static TorchSharp.torch;
using DiffII.Storage;

namespace DiffII.TinyWorld.Pretraining;

/// <summary>
/// Writes the model card of a pretrained tiny generator next to its weights: data, captions, architecture, recipe,
/// loss curves, a grid of samples per context, VAE reconstructions, and the command that reproduces it.
/// </summary>
public static class TinyModelCard
{
    /// <summary>Rows of the sample grid: one context each (pattern, background colour, item colour).</summary>
    public static readonly IReadOnlyList<string> SampleSuffixes =
    [
        "in red on a plain white background",
        "in blue on a striped yellow background",
        "in yellow on a checkered purple background",
        "in white on a dotted green background",
        "in black on a gradient orange background",
        "in pink on a plain gray background",
    ];

    public static void Write(StableDiffusion sd, string folder, PretrainOptions options, string? fashionMnistFolder = null)
    {
        var vaeState = ReadState(options.WorkFolder, "vae");
        var unetState = ReadState(options.WorkFolder, "unet");

        WriteSampleGrid(sd, Path.Combine(folder, "samples.png"), Scene.Metaclass, SampleSuffixes, columns: 8);
        foreach (string kind in ItemKinds.Words)
            WriteSampleGrid(sd, Path.Combine(folder, $"samples-{kind}.png"), kind, SampleSuffixes.Take(KindGridContexts).ToList(), columns: 6);

        // VAE reconstructions of held-out pictures (Fashion-MNIST test split, all contexts).
        string? reconstructionNote = null;
        try
        {
            var test = new TinyWorldData(FashionMnist.Load(FashionMnistSplit.Test, fashionMnistFolder), SceneDistribution.Everything, options.Seed + 99);
            using var scope = NewDisposeScope();
            var batch = TinyWorldData.ToTensor(test.Batch("card", 0, 12));
            var back = sd.DecodeLatents(sd.EncodeImages(batch));
            double error = (back - batch).abs().mean().item<float>() / 2; // on the [0, 1] scale
            reconstructionNote = $"Mean absolute reconstruction error on 12 held-out pictures: {error.ToString("F4", CultureInfo.InvariantCulture)} (pixel scale 0–1).";
            var grid = new List<IReadOnlyList<byte[]?>>
            {
                Enumerable.Range(0, 12).Select(i => (byte[]?)ImageCodec.ToPng(batch[i])).ToList(),
                Enumerable.Range(0, 12).Select(i => (byte[]?)ImageCodec.ToPng(back[i])).ToList(),
            };
            File.WriteAllBytes(Path.Combine(folder, "vae-reconstructions.png"), ImageGrid.RenderPng(grid, new ImageGridOptions { Scale = 3, RowLabels = ["original", "VAE"] }));
        }
        catch (FileNotFoundException)
        {
            reconstructionNote = "(VAE reconstructions not rendered: Fashion-MNIST's test split was not found.)";
        }

        var curves = new List<ScatterSeries>();
        if (vaeState is { Losses.Count: > 0 }) curves.Add(new ScatterSeries("VAE (L1 + KL)", vaeState.Losses.Select(l => new ScatterPoint(l.Step, l.Loss)).ToList(), ConnectPoints: true));
        if (unetState is { Losses.Count: > 0 }) curves.Add(new ScatterSeries("U-Net + text (ε MSE)", unetState.Losses.Select(l => new ScatterPoint(l.Step, l.Loss)).ToList(), ConnectPoints: true));
        if (curves.Count > 0)
            File.WriteAllBytes(Path.Combine(folder, "losses.png"), new ScatterChart(curves)
            {
                Title = "Training loss (running mean)", XAxisTitle = "step", YAxisTitle = "loss", ShowPointLabels = false,
            }.RenderPng(900, 420));

        long Params(torch.nn.Module m) => m.parameters().Sum(p => p.numel());
        var card = new StringBuilder();
        card.AppendLine("# DiffII tiny generator (embedded default)");
        card.AppendLine();
        card.AppendLine("A small Stable Diffusion — the exact SD architecture and diffusers folder layout (AutoencoderKL, UNet2DConditionModel, CLIPTextModel, CLIP-format BPE tokenizer, DDIM scheduler) — trained from scratch by `diffii pretrain-tiny` on two CPU cores. It exists so that every code path a Stable Diffusion 1.5 user takes can run, and be tested, on machines without a GPU or a downloadable model.");
        card.AppendLine();
        card.AppendLine("## Data and captions");
        card.AppendLine();
        card.AppendLine("- Items: Fashion-MNIST (Zalando, MIT licence) training split, 60,000 28×28 grey items in 10 classes, read from Debian's `dataset-fashion-mnist`.");
        card.AppendLine("- Each training picture is composed at 32×32 RGB from one item and a random context: background pattern (plain, gradient, striped, checkered, dotted), background colour and item colour (10 named colours, never equal), item scale (0.7–1.1) and position (±3 px).");
        card.AppendLine($"- Captions describe the context and, in {options.KindCaptions:P0} of the non-empty ones, the item's coarse kind ({string.Join(", ", ItemKinds.Words)}), never its class: `a photo of a [small |large ]<kind or clothing item> in <colour> on a <pattern> <colour> background`. The fine-grained classes within a kind (four tops, three kinds of footwear) are left to concept learning, as species within \"bird\" are for Stable Diffusion.");
        card.AppendLine($"- {options.PartialCaptions:P0} of captions mention a random subset of the attributes, {options.CaptionDropout:P0} are empty (for classifier-free guidance), the rest are full.");
        card.AppendLine($"- Tokenizer: a byte-level BPE vocabulary of {sd.Tokenizer.VocabSize} entries in CLIP's file format, learned by our own code from the caption words (`BpeVocabularyBuilder`).");
        card.AppendLine();
        card.AppendLine("## Architecture");
        card.AppendLine();
        card.AppendLine("| component | configuration | parameters |");
        card.AppendLine("|---|---|---:|");
        // Described from the configs, so a card matches its model whatever the latent's size.
        var vae = sd.Vae.Config;
        int latent = sd.ImageSize / sd.Vae.DownscaleFactor;
        var unet = sd.Unet.Config;
        var attentionSizes = unet.DownBlockTypes.Select((type, i) => (type, size: latent >> i)).Where(b => b.type.StartsWith("CrossAttn", StringComparison.Ordinal)).Select(b => $"{b.size}×{b.size}");
        card.AppendLine($"| VAE (AutoencoderKL) | channels {string.Join('/', vae.BlockOutChannels)}, {vae.LayersPerBlock} layer(s) per block, {sd.Vae.DownscaleFactor}× downsampling: {sd.ImageSize}×{sd.ImageSize}×3 → {latent}×{latent}×{vae.LatentChannels}, scaling factor {sd.Vae.ScalingFactor.ToString("F4", CultureInfo.InvariantCulture)} | {Params(sd.Vae):N0} |");
        card.AppendLine($"| U-Net (UNet2DConditionModel) | channels {string.Join('/', unet.BlockOutChannels)}, cross-attention at {string.Join(" and ", attentionSizes)} (+ mid block), context width {TinyModelConfigs.TextHidden} | {Params(sd.Unet):N0} |");
        card.AppendLine($"| Text encoder (CLIPTextModel) | hidden {TinyModelConfigs.TextHidden}, 3 layers, 4 heads, quick_gelu, 77 positions | {Params(sd.TextEncoder):N0} |");
        card.AppendLine("| Scheduler | DDIM, scaled_linear β 0.00085–0.012, 1000 steps, leading spacing, offset 1 (Stable Diffusion's) | |");
        card.AppendLine();
        card.AppendLine("Weights are stored in float16 (`*.safetensors`).");
        card.AppendLine();
        card.AppendLine("## Recipe");
        card.AppendLine();
        card.AppendLine($"- Seed {options.Seed}; batch {options.BatchSize}; AdamW.");
        card.AppendLine($"- Stage 1, VAE: {options.VaeSteps} steps, lr {options.VaeLearningRate}, L1 reconstruction + {options.VaeKlWeight} × KL; then scaling factor = 1 / std of the latent means.");
        card.AppendLine($"- Stage 2, U-Net + text encoder jointly: {options.UNetSteps} steps, lr {options.UNetLearningRate}, ε-prediction MSE" +
                        (options.MinSnrGamma > 0 ? $" weighted by min-SNR-γ (γ = {options.MinSnrGamma})" : "") + $", gradient clipping 1.0, EMA {options.EmaDecay} (the EMA weights are exported).");
        card.AppendLine($"- Learning rates warm up linearly for {options.WarmupSteps} steps, then decay on a cosine to 5 % of the peak.");
        if (vaeState is not null) card.AppendLine($"- VAE final loss {Last(vaeState)}, {TimeSpan.FromSeconds(vaeState.ElapsedSeconds):hh\\:mm\\:ss} of training.");
        if (unetState is not null) card.AppendLine($"- U-Net final loss {Last(unetState)}, {TimeSpan.FromSeconds(unetState.ElapsedSeconds):hh\\:mm\\:ss} of training.");
        card.AppendLine("- Times are wall-clock on a 2-core CPU that was also running builds and tests.");
        card.AppendLine();
        card.AppendLine("![losses](losses.png)");
        card.AppendLine();
        card.AppendLine("## Samples");
        card.AppendLine();
        card.AppendLine("Each row is one prompt `a photo of a clothing item <context>`, each column a seed:");
        card.AppendLine();
        card.AppendLine("![samples](samples.png)");
        card.AppendLine();
        card.AppendLine("One grid per kind: the prompt `a photo of a <kind> <context>`, each row a context, each column a seed. The judge's share of such samples that fall in the prompted kind is the `kind_prior` gate (`diffii judge-generator`).");
        card.AppendLine();
        foreach (string kind in ItemKinds.Words) card.AppendLine($"![{kind}](samples-{kind}.png)");
        card.AppendLine();
        card.AppendLine("VAE reconstructions (top: held-out pictures, bottom: decoded latents):");
        card.AppendLine();
        card.AppendLine("![vae](vae-reconstructions.png)");
        card.AppendLine();
        card.AppendLine(reconstructionNote);
        card.AppendLine();
        card.AppendLine("## Reproduce");
        card.AppendLine();
        card.AppendLine("```bash");
        card.AppendLine("sudo apt-get install dataset-fashion-mnist");
        card.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"dotnet run --project src/DiffII.Cli -c Release -- pretrain-tiny --work pretrain-work --out models/tiny-sd --seed {options.Seed} --vae-steps {options.VaeSteps} --unet-steps {options.UNetSteps} --batch {options.BatchSize} --latent-size {options.LatentSize} --latent-channels {options.LatentChannels} --vae-learning-rate {options.VaeLearningRate} --unet-learning-rate {options.UNetLearningRate}"));
        card.AppendLine("```");
        card.AppendLine();
        card.AppendLine("The run checkpoints every few hundred steps and resumes where it stopped when the same command is run again.");
        card.AppendLine();
        card.AppendLine("## Limits");
        card.AppendLine();
        card.AppendLine("32×32 pictures of one synthetic world: the model knows clothing shapes and a handful of contexts, nothing else. It is a test and demonstration model, not a generator for real data.");
        File.WriteAllText(Path.Combine(folder, "MODEL_CARD.md"), card.ToString());
    }

    /// <summary>Contexts (rows) of each kind's grid: two keep the card's sampling time near that of the context grid.</summary>
    const int KindGridContexts = 2;

    /// <summary>
    /// A grid of samples of <c>a photo of a &lt;subject&gt; &lt;context&gt;</c>: each row a context, each column a seed
    /// (the same noise, seed 7, in every row and every grid); DDIM 25 steps, CFG 7.5 (the method's sampler settings).
    /// </summary>
    static void WriteSampleGrid(StableDiffusion sd, string path, string subject, IReadOnlyList<string> contexts, int columns)
    {
        var rows = new List<IReadOnlyList<byte[]?>>();
        foreach (var context in contexts)
        {
            using var scope = NewDisposeScope();
            using var generator = new Generator(7);
            var noise = randn([columns, sd.LatentChannels, sd.ImageSize / sd.Vae.DownscaleFactor, sd.ImageSize / sd.Vae.DownscaleFactor], generator: generator);
            var text = sd.EncodePrompts(Enumerable.Repeat($"a photo of a {subject} {context}", columns).ToList());
            var images = sd.DecodeLatents(Sampling.Ddim(sd, noise, Sampling.Constant(text), sd.EncodePrompts([""]), 7.5, 25));
            rows.Add(Enumerable.Range(0, columns).Select(i => (byte[]?)ImageCodec.ToPng(images[i])).ToList());
        }
        File.WriteAllBytes(path, ImageGrid.RenderPng(rows, new ImageGridOptions
        {
            Scale = 3, RowLabels = contexts.ToList(), Title = $"a photo of a {subject} ... (DDIM 25 steps, CFG 7.5, seed 7)", MaxRowLabelWidth = 300,
        }));
    }

    static string Last(StageState state) => state.Losses.Count == 0 ? "n/a" : state.Losses[^1].Loss.ToString("F4", CultureInfo.InvariantCulture);

    static StageState? ReadState(string workFolder, string stage)
    {
        string path = Path.Combine(workFolder, $"{stage}.state.json");
        return JsonFile.Read<StageState>(path);
    }
}
