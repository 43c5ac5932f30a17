using DiffII.Diffusion.Pipelines;
using SkiaSharp;

namespace DiffII.Tests.Method;

/// <summary>The diffusers-made sd-tiny-a model (random weights, 16-px images) and small labelled image sets for method tests.</summary>
static class TinyGenerator
{
    public static StableDiffusion Load() => StableDiffusion.Load(SharedData.TinyA());

    /// <summary>Solid-colour 16×16 PNGs with a square: classes differ by colour, images within a class by the square's place.</summary>
    public static List<LabeledImage> Images(params (string Label, int Count)[] classes)
    {
        var images = new List<LabeledImage>();
        var colours = new[] { SKColors.Red, SKColors.Blue, SKColors.Green, SKColors.Orange };
        for (int c = 0; c < classes.Length; c++)
            for (int k = 0; k < classes[c].Count; k++)
            {
                using var bmp = new SKBitmap(16, 16);
                bmp.Erase(colours[c % colours.Length]);
                for (int y = 2 + k; y < 8 + k; y++) for (int x = 3 + 2 * k; x < 9 + 2 * k; x++) bmp.SetPixel(x % 16, y % 16, SKColors.White);
                using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
                byte[] bytes = data.ToArray();
                images.Add(new LabeledImage($"{classes[c].Label}-{k}.png", classes[c].Label, () => bytes));
            }
        return images;
    }
}
