using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

namespace DiffII.Suffixes;

/// <summary>One training image to caption: its encoded bytes and media type (e.g. image/png).</summary>
public sealed record CaptionInput(ReadOnlyMemory<byte> Image, string MediaType, string Name);

/// <summary>Progress of suffix generation: how many images are captioned so far, out of how many.</summary>
public sealed record SuffixProgress(int Captioned, int Total, string Stage);

/// <summary>
/// Makes dataset-specific suffixes the way the paper does (Sec. 3.3, App. A.3): a vision model captions each
/// training image, then a language model summarises the captions into settings of the form
/// "a photo of a [metaclass] [suffix]". Any <see cref="IChatClient"/> works: OpenAI-compatible servers, Ollama,
/// Azure, or an in-process model.
/// </summary>
public sealed class SuffixGenerator(IChatClient captioner, IChatClient summarizer)
{
    /// <summary>What the captioner is asked for each image (BLIP-style: one short factual sentence).</summary>
    public string CaptionInstruction { get; init; } =
        "Write one short, factual caption for this photo (at most 20 words), in the style of an image-captioning model. " +
        "Describe the main subject and its setting. Reply with the caption only.";

    /// <summary>The paper's summarising instruction; {captions} and {prefix} are filled in.</summary>
    public const string PaperSummaryInstruction =
        "I have a set of image captions that I want to summarize into objective descriptions that describe the scenes, actions, camera pose, zoom, and other image qualities present.\n" +
        "My captions are: {captions}\n" +
        "I want the output to be a list of {count} captions that describe a unique setting, of the form {prefix}.\n" +
        "Here are 3 examples of what I want the output to look like:\n" +
        "- {prefix} standing on a branch.\n" +
        "- {prefix} flying in the sky with the Austin skyline in the background.\n" +
        "- {prefix} playing in a river at night.\n" +
        "Based on the above captions, the output should be:";

    /// <summary>Captions every image, one request per image, in order.</summary>
    public async Task<IReadOnlyList<string>> CaptionAsync(IReadOnlyList<CaptionInput> images, IProgress<SuffixProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var captions = new List<string>(images.Count);
        for (int i = 0; i < images.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var message = new ChatMessage(ChatRole.User, [new TextContent(CaptionInstruction), new DataContent(images[i].Image, images[i].MediaType)]);
            ChatResponse response;
            try { response = await captioner.GetResponseAsync([message], cancellationToken: cancellationToken).ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException)
            { throw new InvalidOperationException($"Captioning {images[i].Name} failed: {e.Message}", e); }
            string caption = response.Text.Trim().Trim('"').Trim();
            if (caption.Length == 0) throw new InvalidOperationException($"The captioning model returned an empty caption for {images[i].Name}.");
            captions.Add(caption);
            progress?.Report(new SuffixProgress(i + 1, images.Count, "caption"));
        }
        return captions;
    }

    /// <summary>Summarises captions into <paramref name="count"/> suffixes with the paper's instruction.</summary>
    public async Task<IReadOnlyList<string>> SummarizeAsync(IReadOnlyList<string> captions, string metaclass, int count = 10, CancellationToken cancellationToken = default)
    {
        if (captions.Count == 0) throw new ArgumentException("There are no captions to summarise.", nameof(captions));
        string prefix = $"a photo of a {metaclass}";
        string prompt = PaperSummaryInstruction
            .Replace("{captions}", string.Join("; ", captions))
            .Replace("{count}", count.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Replace("{prefix}", prefix);
        var response = await summarizer.GetResponseAsync([new ChatMessage(ChatRole.User, prompt)], cancellationToken: cancellationToken).ConfigureAwait(false);
        var suffixes = ParseSuffixes(response.Text, prefix);
        if (suffixes.Count == 0)
            throw new InvalidOperationException($"The summarising model's reply contained no line of the form \"- {prefix} ...\". Reply was: {Truncate(response.Text, 300)}");
        return suffixes.Take(count).ToList();
    }

    /// <summary>Captions then summarises: the whole suffix step.</summary>
    public async Task<IReadOnlyList<string>> GenerateAsync(IReadOnlyList<CaptionInput> images, string metaclass, int count = 10, IProgress<SuffixProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var captions = await CaptionAsync(images, progress, cancellationToken).ConfigureAwait(false);
        progress?.Report(new SuffixProgress(images.Count, images.Count, "summarise"));
        return await SummarizeAsync(captions, metaclass, count, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Pulls suffixes out of a list reply: bullet or numbered lines, with or without the "a photo of a [metaclass]"
    /// prefix; duplicates (case-insensitive) dropped, each ending with a full stop like the paper's presets.
    /// </summary>
    public static IReadOnlyList<string> ParseSuffixes(string reply, string prefix)
    {
        var result = new List<string>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var raw in reply.Split('\n'))
        {
            string line = Regex.Replace(raw.Trim(), @"^(?:[-*•]|\d+[.)])\s*", "").Trim().Trim('"').Trim();
            bool bulleted = line.Length != raw.Trim().Length;
            int at = line.IndexOf(prefix, StringComparison.OrdinalIgnoreCase);
            if (at >= 0) line = line[(at + prefix.Length)..].Trim();
            else if (!bulleted) continue; // prose around the list
            line = line.TrimStart(',', ':', ' ').Trim();
            if (line.Length == 0) continue;
            if (!line.EndsWith('.')) line += ".";
            if (seen.Add(line)) result.Add(line);
        }
        return result;
    }

    static string Truncate(string s, int n) => s.Length <= n ? s : s[..n] + "…";
}
