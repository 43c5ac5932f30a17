using DiffII.Cli;
using SkiaSharp;

namespace DiffII.Cli.Tests;

/// <summary>What one in-process run of the command line printed and returned.</summary>
public sealed record CliResult(int Code, string Stdout, string Stderr)
{
    public string[] ErrorLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    public override string ToString() => $"exit {Code}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs diffii in-process, and makes small labelled image folders for it.</summary>
public static class Cli
{
    public static async Task<CliResult> Run(params string[] args) => await Run(CancellationToken.None, null, args);

    public static async Task<CliResult> Run(CancellationToken cancel, TextWriter? stderr, params string[] args)
    {
        var stdout = new StringWriter();
        var err = stderr ?? new StringWriter();
        int code = await CliApp.RunAsync(args, stdout, err, cancel);
        return new CliResult(code, stdout.ToString(), err.ToString() ?? "");
    }

    /// <summary>The tiny diffusers model (16-px, random weights) and step counts that keep a whole run to seconds.</summary>
    public static string[] Tiny(string work, string images, params string[] extra) =>
    [
        "--work", work, "--images", images, "--model", SharedData.TinyA(), "--metaclass", "bird",
        "--learn-steps", "2", "--lora-rank", "2", "--batch", "2", "--inversion-steps", "2", "--sample-steps", "2", .. extra,
    ];

    /// <summary>A folder with one sub-folder per class of 16×16 PNGs: a class colour with a white square whose place differs per image.</summary>
    public static string Images(string root, params (string Label, int Count)[] classes)
    {
        var colours = new[] { SKColors.Red, SKColors.Blue, SKColors.Green };
        for (int c = 0; c < classes.Length; c++)
        {
            string folder = Path.Combine(root, classes[c].Label);
            Directory.CreateDirectory(folder);
            for (int k = 0; k < classes[c].Count; k++)
            {
                using var bmp = new SKBitmap(16, 16);
                bmp.Erase(colours[c % colours.Length]);
                for (int y = 2 + k; y < 8 + k; y++) for (int x = 3 + 2 * k; x < 9 + 2 * k; x++) bmp.SetPixel(x % 16, y % 16, SKColors.White);
                using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(folder, $"{k}.png"), data.ToArray());
            }
        }
        return root;
    }
}
