using System.CommandLine;
using System.Diagnostics;
using DiffII.Diffusion.Runtime;
using DiffII.TinyWorld.Pretraining;
using TorchSharp;

namespace DiffII.Cli.Commands;

/// <summary>doctor (is the native backend usable?) and pretrain-tiny (the embedded tiny generator).</summary>
public static class ToolCommands
{
    public static Command Doctor(CliApp app)
    {
        var command = new Command("doctor", "Check that TorchSharp's native backend loads, and report the devices.");
        command.SetAction((parse, cancel) => app.Guard(parse, "doctor", output =>
        {
            TorchRuntime.EnsureLoaded();
            string device = parse.GetValue(app.Global.Device)!;
            using var x = torch.ones(2, 2);
            float sum = x.sum().item<float>();
            bool cuda = torch.cuda.is_available();
            output.Line($"TorchSharp backend: {TorchRuntime.BuildBackend}; CPU ok (sum of ones(2,2) = {sum}); threads: {torch.get_num_threads()}; CUDA available: {cuda}");
            string native = TorchRuntime.DescribeNativeLibrary();
            output.Line(native);
            var bf16 = CpuBFloat16Support.Detect();
            output.Line($"CPU bfloat16: {bf16.Summary} (from {bf16.Source}); float32 stays the CPU default");
            string? model = null;
            try { model = RunPreparation.ResolveModel(new RunSettings()); } catch (CliException) { }
            output.Line(model is null ? $"default model: none found (pass --model, or set {ModelLocator.EnvironmentVariable})" : $"default model: {model}");
            if (device != "cpu")
            {
                var parsed = ModelLocator.ParseDevice(device);
                using var y = torch.ones(2, 2, device: parsed);
                output.Line($"{device} ok (sum of ones(2,2) = {y.sum().item<float>()})");
            }
            output.Result(new { status = "ok", command = "doctor", backend = TorchRuntime.BuildBackend, nativeLibrary = native, cpuSum = sum, threads = torch.get_num_threads(), cudaAvailable = cuda, defaultModel = model,
                cpuBFloat16 = new { native = bf16.Native, avx512 = bf16.Avx512, avx512Bf16 = bf16.Avx512BFloat16, amxBf16 = bf16.AmxBFloat16, summary = bf16.Summary } });
            return Task.FromResult(CliApp.Ok);
        }, cancel));
        return command;
    }

    public static Command PretrainTiny(CliApp app)
    {
        var defaults = new PretrainOptions { WorkFolder = "" };
        var work = new Option<string>("--work", "-w") { Description = "Work folder for checkpoints (a rerun resumes there).", Required = true, HelpName = "DIR" };
        var output = new Option<string>("--out", "-o") { Description = "Where the diffusers folder (fp16) is written.", Required = true, HelpName = "DIR" };
        var vaeSteps = new Option<int>("--vae-steps") { Description = "VAE training steps.", DefaultValueFactory = _ => defaults.VaeSteps, HelpName = "N" };
        var unetSteps = new Option<int>("--unet-steps") { Description = "U-Net (+ text encoder) training steps.", DefaultValueFactory = _ => defaults.UNetSteps, HelpName = "N" };
        var batch = new Option<int>("--batch") { Description = "Batch size.", DefaultValueFactory = _ => defaults.BatchSize, HelpName = "N" };
        var latentChannels = new Option<int>("--latent-channels") { Description = "Channels of the latent (a new work folder for another count).", DefaultValueFactory = _ => defaults.LatentChannels, HelpName = "N" };
        var latentSize = new Option<int>("--latent-size") { Description = "Width of the latent: 8 (4× downsampling) or 16 (2×); a new work folder for another size.", DefaultValueFactory = _ => defaults.LatentSize, HelpName = "8|16" };
        var vaeLearningRate = new Option<double>("--vae-learning-rate") { Description = "Peak learning rate of the VAE stage.", DefaultValueFactory = _ => defaults.VaeLearningRate, HelpName = "LR" };
        var unetLearningRate = new Option<double>("--unet-learning-rate") { Description = "Peak learning rate of the U-Net (+ text encoder) stage.", DefaultValueFactory = _ => defaults.UNetLearningRate, HelpName = "LR" };
        var fashionMnist = new Option<string?>("--fashion-mnist") { Description = "Folder with the Fashion-MNIST files (default: the shared data folder).", HelpName = "DIR" };
        var command = new Command("pretrain-tiny", "Pretrain the embedded tiny generator on Fashion-MNIST scenes (resumes from --work).")
        {
            work, output, vaeSteps, unetSteps, batch, latentChannels, latentSize, vaeLearningRate, unetLearningRate, fashionMnist,
        };
        command.SetAction((parse, cancel) => app.Guard(parse, "pretrain-tiny", cli =>
        {
            var clock = Stopwatch.StartNew();
            var options = new PretrainOptions
            {
                WorkFolder = Path.GetFullPath(parse.GetValue(work)!),
                Seed = parse.GetValue(app.Global.Seed) ?? defaults.Seed,
                VaeSteps = parse.GetValue(vaeSteps),
                UNetSteps = parse.GetValue(unetSteps),
                BatchSize = parse.GetValue(batch),
                LatentChannels = parse.GetValue(latentChannels),
                LatentSize = parse.GetValue(latentSize),
                VaeLearningRate = parse.GetValue(vaeLearningRate),
                UNetLearningRate = parse.GetValue(unetLearningRate),
                FashionMnistFolder = parse.GetValue(fashionMnist),
                Device = ModelLocator.ParseDevice(parse.GetValue(app.Global.Device)!),
            };
            string outputFolder = Path.GetFullPath(parse.GetValue(output)!);
            cli.Track(progress =>
            {
                using var sd = new TinyPretrainer(options).Run(outputFolder,
                    new MethodRun.Adapter<PretrainProgress>(p => progress.Report(new StepProgress(p.Stage, p.Step, p.TotalSteps, p.Loss))), cancel);
                return 0;
            });
            cli.Line($"saved {outputFolder}");
            cli.Result(new { status = "ok", command = "pretrain-tiny", output = outputFolder, seconds = Math.Round(clock.Elapsed.TotalSeconds, 2) });
            return Task.FromResult(CliApp.Ok);
        }, cancel));
        return command;
    }
}
