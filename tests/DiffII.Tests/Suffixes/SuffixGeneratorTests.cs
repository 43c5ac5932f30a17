using DiffII.Suffixes;
using Microsoft.Extensions.AI;
using SkiaSharp;

namespace DiffII.Tests.Suffixes;

public class SuffixGeneratorTests
{
    /// <summary>An in-process "vision model": names the dominant colour of the image it is shown.</summary>
    sealed class ColourCaptioner : IChatClient
    {
        public int Calls;
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Calls++;
            var image = messages.Single().Contents.OfType<DataContent>().Single();
            using var bitmap = SKBitmap.Decode(image.Data.ToArray());
            var c = bitmap.GetPixel(bitmap.Width / 2, bitmap.Height / 2);
            string colour = c.Red > c.Blue ? "red" : "blue";
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, $"\"a {colour} bird sitting on a {colour} fence\"")));
        }
        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public object? GetService(Type serviceType, object? serviceKey = null) => null;
        public void Dispose() { }
    }

    /// <summary>An in-process "language model": turns each distinct caption into one setting line, as a list.</summary>
    sealed class ListSummarizer : IChatClient
    {
        public string? Prompt;
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Prompt = messages.Single().Text;
            string captions = Prompt.Split("My captions are: ")[1].Split('\n')[0];
            var lines = captions.Split("; ").Distinct().Select(c => "- a photo of a bird " + c[(c.IndexOf("sitting", StringComparison.Ordinal))..]);
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "Sure! Here they are:\n" + string.Join("\n", lines) + "\nHope this helps.")));
        }
        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public object? GetService(Type serviceType, object? serviceKey = null) => null;
        public void Dispose() { }
    }

    static CaptionInput Image(SKColor colour, string name)
    {
        using var bmp = new SKBitmap(8, 8);
        bmp.Erase(colour);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        return new CaptionInput(data.ToArray(), "image/png", name);
    }

    [Fact]
    public async Task Generate_CaptionsEveryImage_ThenSummarisesWithThePapersInstruction()
    {
        var captioner = new ColourCaptioner();
        var summarizer = new ListSummarizer();
        var progress = new List<SuffixProgress>();
        var generator = new SuffixGenerator(captioner, summarizer);
        var suffixes = await generator.GenerateAsync(
            [Image(SKColors.Red, "a.png"), Image(SKColors.Blue, "b.png"), Image(SKColors.Red, "c.png")], "bird", count: 5,
            progress: new Progress<SuffixProgress>(progress.Add));

        Assert.Equal(3, captioner.Calls);
        Assert.Contains("of the form a photo of a bird.", summarizer.Prompt);
        Assert.Contains("- a photo of a bird standing on a branch.", summarizer.Prompt);
        Assert.Contains("a red bird sitting on a red fence; a blue bird sitting on a blue fence; a red bird", summarizer.Prompt);
        Assert.Equal(["sitting on a red fence.", "sitting on a blue fence."], suffixes);
    }

    [Theory]
    [InlineData("1. a photo of a car parked on a road\n2) A photo of a car driving at night.", new[] { "parked on a road.", "driving at night." })]
    [InlineData("Here you go:\n- standing in snow.\n* standing in snow.\n• in a close-up view", new[] { "standing in snow.", "in a close-up view." })]
    [InlineData("no list at all", new string[0])]
    public void ParseSuffixes_AcceptsCommonListShapes(string reply, string[] expected)
    {
        Assert.Equal(expected, SuffixGenerator.ParseSuffixes(reply, reply.Contains("car") ? "a photo of a car" : "a photo of a bird"));
    }

    [Fact]
    public async Task Cancellation_StopsBeforeTheNextImage()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var generator = new SuffixGenerator(new ColourCaptioner(), new ListSummarizer());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator.CaptionAsync([Image(SKColors.Red, "a.png")], cancellationToken: cts.Token));
    }

    [Fact]
    public void Presets_ComeFromThePaper_AndUnknownNamesListTheChoices()
    {
        Assert.Equal(10, SuffixPresets.Get("CUB-5shot").Suffixes.Count);
        Assert.Equal("standing on a tree branch.", SuffixPresets.Get("cub-5shot").Suffixes[0]);
        Assert.All(SuffixPresets.FromThePaper, p => Assert.All(p.Suffixes, s => Assert.EndsWith(".", s)));
        Assert.Equal("clothing item", SuffixPresets.Get("tiny-world").Metaclass);
        Assert.Contains("cub-5shot", Assert.Throws<ArgumentException>(() => SuffixPresets.Get("nope")).Message);
    }
}
