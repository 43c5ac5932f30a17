using System.Text.Json;
using DiffII.Augmentation;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Pipelines;
using DiffII.Diffusion.Runtime;
using DiffII.MLNet;
using DiffII.MLNet.Data;
using DiffII.Reliability.Tests.Fixtures;
using DiffII.Reliability.Tests.Matrix;
using Microsoft.ML;
using static TorchSharp.torch;

namespace DiffII.Reliability.Tests.Rows;

/// <summary>Models: broken or unusual checkpoints are refused naming the path, key and shapes; NaN never becomes a black image.</summary>
public static class ModelRows
{
    /// <summary>A damaged model copy: how to damage it, and what the error must say (given the copy's folder).</summary>
    sealed record BrokenModel(string Key, string When, string Then, Func<string, string> Damage, Func<string, string[]> Expected);

    static readonly BrokenModel[] Broken =
    [
        new("missing-folder", "a diffusers folder without its vae/ sub-folder", "refused with an error naming the missing folder and what belongs there",
            m => { Directory.Delete(Path.Combine(m, "vae"), true); return m; },
            m => [Path.Combine(m, "vae"), "folder missing"]),
        new("missing-weights", "a component without its weights file (unet/diffusion_pytorch_model.safetensors)", "refused with an error naming the folder, the file expected and what the folder holds",
            m => { File.Delete(Path.Combine(m, "unet", "diffusion_pytorch_model.safetensors")); return m; },
            m => [Path.Combine(m, "unet"), "diffusion_pytorch_model.safetensors", "config.json"]),
        new("wrong-shape", "a checkpoint with a tensor of the wrong shape", "refused with an error naming the file, the key and both shapes",
            m =>
            {
                ModelFiles.Rewrite(Path.Combine(m, "unet", "diffusion_pytorch_model.safetensors"), t => t["conv_in.weight"] = zeros(32, 4, 1, 1));
                return m;
            },
            m => [Path.Combine(m, "unet", "diffusion_pytorch_model.safetensors"), "'conv_in.weight'", "[32, 4, 3, 3]", "[32, 4, 1, 1]"]),
        new("truncated-weights", "a weights file cut short (an interrupted download)", "refused with an error naming the file and saying it is truncated",
            m =>
            {
                string path = Path.Combine(m, "vae", "diffusion_pytorch_model.safetensors");
                byte[] bytes = File.ReadAllBytes(path);
                File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
                return m;
            },
            m => [Path.Combine(m, "vae", "diffusion_pytorch_model.safetensors"), "truncated"]),
        new("unknown-single-file", "a single .safetensors file of an unknown layout (not SD 1.x/2.x)", "refused with an error naming the file and the key prefixes it has",
            m =>
            {
                string file = Path.Combine(m, "mystery.safetensors");
                SafeTensorsFile.Save(file, new Dictionary<string, Tensor> { ["transformer.blocks.0.attn.weight"] = zeros(4, 4), ["transformer.head.bias"] = zeros(4) });
                return file;
            },
            m => [Path.Combine(m, "mystery.safetensors"), "transformer"]),
    ];

    const string NanWhen = "NaN appearing in a latent during generation (here: a corrupted embedding row of one suffix's word)";
    const string NanThen = "detected per sample and reported (library Failures, ML.NET Failures, CLI warning per sample and a count); never written as an image; the other samples are kept";

    public static IEnumerable<MatrixRow> All =>
    [
        .. Broken.Select(b => MatrixRow.Sync($"model.{b.Key}.library", Area.Models, Layer.Library, b.When, b.Then, s => Library(s, b))),
        .. Broken.Where(b => b.Key is "missing-folder" or "wrong-shape").Select(b => MatrixRow.Sync($"model.{b.Key}.mlnet", Area.Models, Layer.MLNet, b.When, b.Then, s => MLNet(s, b))),
        .. Broken.Select(b => new MatrixRow($"model.{b.Key}.cli", Area.Models, Layer.Cli, b.When, b.Then, s => Cli(s, b))),
        MatrixRow.Sync("model.fp16-into-fp32.library", Area.Models, Layer.Library, "fp16 weight files loaded into a float32 model",
            "loaded, each tensor cast to float32 (values exactly the fp16 ones); generation runs", Fp16Library),
        new("model.fp16-into-fp32.cli", Area.Models, Layer.Cli, "fp16 weight files loaded into a float32 model",
            "loaded, each tensor cast to float32 (values exactly the fp16 ones); generation runs", Fp16Cli),
        MatrixRow.Sync("model.nan-latent.library", Area.Models, Layer.Library, NanWhen, NanThen, NanLibrary),
        MatrixRow.Sync("model.nan-latent.mlnet", Area.Models, Layer.MLNet, NanWhen, NanThen, NanMLNet),
        new("model.nan-latent.cli", Area.Models, Layer.Cli, NanWhen, NanThen, NanCli),
    ];

    // ---- damaged checkpoints ----

    static void AssertNames(string message, IEnumerable<string> expected)
    {
        foreach (string part in expected) Assert.Contains(part, message);
    }

    static void Library(Scratch s, BrokenModel broken)
    {
        string model = ModelFiles.Copy(s.Path("model"));
        string path = broken.Damage(model);
        var e = Record.Exception(() => StableDiffusion.Load(path, new StableDiffusionLoadOptions { TokenizerFolder = Path.Combine(model, "tokenizer") }).Dispose());
        Assert.NotNull(e);
        Assert.True(e is CheckpointLayoutException or CheckpointMismatchException or SafeTensorsException, $"{e.GetType().Name}: {e.Message}");
        AssertNames(e.Message, broken.Expected(model));
    }

    static void MLNet(Scratch s, BrokenModel broken)
    {
        string model = ModelFiles.Copy(s.Path("model"));
        string path = broken.Damage(model);
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        var data = ImageFolderDataset.Load(new MLContext(seed: 1), images);
        var e = Record.Exception(() => new DiffIIAugmentEstimator(Tiny.MLNet(s.Path("cache")) with { GeneratorPath = path }).Fit(data));
        Assert.NotNull(e);
        Assert.True(e is CheckpointLayoutException or CheckpointMismatchException, $"{e.GetType().Name}: {e.Message}");
        AssertNames(e.Message, broken.Expected(model));
    }

    static async Task Cli(Scratch s, BrokenModel broken)
    {
        string model = ModelFiles.Copy(s.Path("model"));
        string path = broken.Damage(model);
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        var args = Tiny.CliArgs(s.Path("work"), images, "--tokenizer", Path.Combine(model, "tokenizer")).ToList();
        args[args.IndexOf("--model") + 1] = path;
        var line = (await CliRunner.Run(["augment", .. args])).OneErrorLine();
        AssertNames(line, broken.Expected(model));
    }

    // ---- fp16 files into a float32 model ----

    static string Fp16Copy(Scratch s)
    {
        using var sd = Tiny.Load();
        string folder = s.Path("model-fp16");
        sd.SaveDiffusersFolder(folder, ScalarType.Float16);
        using var file = SafeTensorsFile.Open(Path.Combine(folder, "unet", "diffusion_pytorch_model.safetensors"));
        Assert.All(file.Tensors, t => Assert.Equal("F16", t.DType));
        return folder;
    }

    static void Fp16Library(Scratch s)
    {
        string folder = Fp16Copy(s);
        using var reference = Tiny.Load();
        using var sd = StableDiffusion.Load(folder);
        Assert.Equal(ScalarType.Float32, sd.DType);
        var expected = reference.Unet.state_dict();
        foreach (var (key, value) in sd.Unet.state_dict())
        {
            Assert.Equal(ScalarType.Float32, value.dtype);
            Assert.True(value.eq(expected[key].to(ScalarType.Float16).to(ScalarType.Float32)).all().item<bool>(), $"{key} is not the fp16 value");
        }
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(Strategy.RealGuidance, expansion: 1), s.Path("work"));
        Assert.Equal(4, augmenter.Run(Tiny.Images(("a", 2), ("b", 2))).Count);
    }

    static async Task Fp16Cli(Scratch s)
    {
        string folder = Fp16Copy(s);
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string work = s.Path("work");
        var args = Tiny.CliArgs(work, images, "--expansion", "1").ToList();
        args[args.IndexOf("--model") + 1] = folder;
        (await CliRunner.Run(["augment", .. args])).AssertOk();
        Assert.Equal(4, Outputs.ManifestLines(work));
    }

    // ---- NaN in a latent ----

    /// <summary>The token ids of "water": a word of the second suffix only (not of the first, the prompts or the empty prompt).</summary>
    static IReadOnlyList<int> PoisonedWord(StableDiffusion sd)
    {
        var ids = sd.Tokenizer.Encode("water", addSpecialTokens: false);
        var others = sd.Tokenizer.Encode(Tiny.Suffixes[0] + " a photo of a bird", addSpecialTokens: false);
        Assert.DoesNotContain(ids, others.Contains);
        return ids;
    }

    /// <summary>Makes every sample whose suffix mentions water turn NaN in its first denoising stage.</summary>
    static void Poison(StableDiffusion sd)
    {
        var ids = PoisonedWord(sd);
        sd.TextEncoder.SetTokenEmbeddings(ids, KeptScalars.Full([ids.Count, sd.TextEncoder.Config.HiddenSize], double.NaN));
    }

    static void AssertFailuresReported(string work, IReadOnlyCollection<string> failed, IReadOnlyCollection<string> made)
    {
        var manifest = File.ReadAllLines(Path.Combine(work, "manifest.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.True(failed.Count > 0 && made.Count > 0, $"{failed.Count} failed, {made.Count} made: the poisoned suffix must hit some samples, not all");
        Assert.All(manifest, e => Assert.Equal(Tiny.Suffixes[0], e.GetProperty("suffix").GetString()));
        Assert.Equal(made.Order(StringComparer.Ordinal), manifest.Select(e => e.GetProperty("id").GetString()!).Order(StringComparer.Ordinal));
        foreach (string id in failed)
            Assert.Empty(Directory.GetFiles(work, id + ".png*", SearchOption.AllDirectories));
        Assert.Equal(made.Count, Outputs.Pngs(work).Length);
    }

    static void NanLibrary(Scratch s)
    {
        using var sd = Tiny.Load();
        Poison(sd);
        string work = s.Path("work");
        using var augmenter = new DiffIIAugmenter(sd, Tiny.Options(Strategy.TwoStageOnly), work);
        var made = augmenter.Run(Tiny.Images(("a", 2), ("b", 2)));
        var planned = augmenter.Plan();
        Assert.Equal(planned.Where(p => p.Suffix == Tiny.Suffixes[1]).Select(p => p.Id).Order(StringComparer.Ordinal),
            augmenter.Failures.Select(f => f.SampleId).Order(StringComparer.Ordinal));
        Assert.All(augmenter.Failures, f => Assert.Contains("NaN", f.Reason));
        AssertFailuresReported(work, augmenter.Failures.Select(f => f.SampleId).ToList(), made.Select(m => m.Id).ToList());
    }

    static void NanMLNet(Scratch s)
    {
        using var sd = Tiny.Load();
        Poison(sd);
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string cache = s.Path("cache");
        var options = Tiny.MLNet(cache, strategy: Strategy.TwoStageOnly) with { GeneratorPath = null };
        var fitted = new DiffIIAugmentEstimator(options, sd).Fit(ImageFolderDataset.Load(new MLContext(seed: 1), images));
        Assert.NotEmpty(fitted.Failures);
        Assert.Equal(8, fitted.SyntheticRows.Count + fitted.Failures.Count);
        Assert.All(fitted.Failures, f => Assert.Contains("NaN", f));
        var failed = fitted.Failures.Select(f => f[..f.IndexOf(':')]).ToList();
        var made = File.ReadAllLines(Path.Combine(cache, "manifest.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()!).ToList();
        AssertFailuresReported(cache, failed, made);
    }

    static async Task NanCli(Scratch s)
    {
        string model = ModelFiles.Copy(s.Path("model"));
        using (var sd = Tiny.Load())
        {
            var ids = PoisonedWord(sd);
            ModelFiles.Rewrite(Path.Combine(model, "text_encoder", "model.safetensors"), t =>
            {
                using var _ = no_grad();
                foreach (int id in ids) t[ModelFiles.TokenEmbeddingKey][id].Fill_(double.NaN);
            });
        }
        string images = Tiny.Folder(s.Path("images"), ("a", 2), ("b", 2));
        string suffixes = s.Path("suffixes.txt");
        File.WriteAllLines(suffixes, Tiny.Suffixes);
        string work = s.Path("work");
        var args = Tiny.CliArgs(work, images, "--strategy", "two-stage-only", "--expansion", "2", "--split", "0.5", "--json").ToList();
        args[args.IndexOf("--model") + 1] = model;
        args[args.IndexOf("--suffix-preset")] = "--suffix-file";
        args[args.IndexOf("cub-5shot")] = suffixes;
        var run = await CliRunner.Run(["augment", .. args]);
        run.AssertOk();
        using var json = JsonDocument.Parse(run.Stdout);
        var failed = json.RootElement.GetProperty("failures").EnumerateArray().Select(f => f.GetProperty("sample").GetString()!).ToList();
        Assert.Equal(failed.Count, json.RootElement.GetProperty("failed").GetInt32());
        Assert.Equal(8, json.RootElement.GetProperty("synthetic").GetInt32() + failed.Count);
        foreach (string id in failed) Assert.Contains($"warning: sample {id} was not written", run.Stderr);
        Assert.Contains($"warning: {failed.Count} of 8 samples could not be made", run.Stderr);
        var made = File.ReadAllLines(Path.Combine(work, "manifest.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()!).ToList();
        AssertFailuresReported(work, failed, made);
    }
}
