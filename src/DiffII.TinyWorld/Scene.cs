namespace DiffII.TinyWorld;

/// <summary>Background patterns of the tiny world; their caption words are in <see cref="Scene.PatternWord"/>.</summary>
public enum BackgroundPattern { Plain, Gradient, Stripes, Checks, Dots }

/// <summary>A named colour of the tiny world's palette.</summary>
public sealed record NamedColor(string Name, float R, float G, float B);

/// <summary>
/// Everything about a tiny-world picture except the item itself: the item's colour, the background's pattern and
/// colour, the item's scale and where it sits. This is what captions describe; the item's class never appears in a
/// caption, so the generator learns clothing shapes without ever being told which class is which.
/// </summary>
public sealed record Scene(BackgroundPattern Pattern, NamedColor Background, NamedColor Item, float Scale, int OffsetX, int OffsetY)
{
    public const string Metaclass = "clothing item";

    public static readonly IReadOnlyList<NamedColor> Palette =
    [
        new("red", 0.85f, 0.15f, 0.15f),
        new("orange", 0.95f, 0.55f, 0.10f),
        new("yellow", 0.95f, 0.88f, 0.20f),
        new("green", 0.20f, 0.70f, 0.25f),
        new("blue", 0.15f, 0.35f, 0.90f),
        new("purple", 0.55f, 0.25f, 0.75f),
        new("pink", 0.95f, 0.55f, 0.75f),
        new("white", 0.95f, 0.95f, 0.95f),
        new("gray", 0.50f, 0.50f, 0.50f),
        new("black", 0.08f, 0.08f, 0.08f),
    ];

    public static string PatternWord(BackgroundPattern pattern) => pattern switch
    {
        BackgroundPattern.Plain => "plain",
        BackgroundPattern.Gradient => "gradient",
        BackgroundPattern.Stripes => "striped",
        BackgroundPattern.Checks => "checkered",
        BackgroundPattern.Dots => "dotted",
        _ => throw new ArgumentOutOfRangeException(nameof(pattern)),
    };

    /// <summary>"small", "large" or null for the middle size.</summary>
    public string? SizeWord => Scale < 0.8f ? "small" : Scale > 1.0f ? "large" : null;

    /// <summary>The context as a prompt suffix, e.g. "in red on a striped blue background".</summary>
    public string Suffix => $"in {Item.Name} on a {PatternWord(Pattern)} {Background.Name} background";

    /// <summary>The full caption: "a photo of a [small |large ]clothing item in red on a striped blue background".</summary>
    public string Caption => CaptionOf(Metaclass);

    /// <summary>
    /// The full caption naming <paramref name="subject"/> (the metaclass, or the coarse kind of the item, see
    /// <see cref="ItemKinds"/>): "a photo of a [small |large ]&lt;subject&gt; in red on a striped blue background".
    /// </summary>
    public string CaptionOf(string subject) => $"a photo of a {(SizeWord is null ? "" : SizeWord + " ")}{subject} {Suffix}";

    /// <summary>
    /// A caption that mentions only some attributes, so the generator also learns what a partial prompt means (the
    /// method's plain prompt names no context at all). Each attribute is kept with probability <paramref name="keep"/>.
    /// </summary>
    public string PartialCaption(Random random, double keep) => PartialCaptionOf(Metaclass, random, keep);

    /// <summary><see cref="PartialCaption"/> naming <paramref name="subject"/> instead of the metaclass.</summary>
    public string PartialCaptionOf(string subject, Random random, double keep)
    {
        bool size = SizeWord is not null && random.NextDouble() < keep;
        bool item = random.NextDouble() < keep;
        bool pattern = random.NextDouble() < keep;
        bool background = random.NextDouble() < keep;
        var text = $"a photo of a {(size ? SizeWord + " " : "")}{subject}";
        if (item) text += $" in {Item.Name}";
        if (pattern || background)
            text += $" on a {(pattern ? PatternWord(Pattern) + " " : "")}{(background ? Background.Name + " " : "")}background";
        return text;
    }

    /// <summary>Every word a tiny-world caption or the method's prompts can use (for building the vocabulary).</summary>
    public static IEnumerable<string> Vocabulary()
    {
        string[] fixedWords = ["a", "photo", "of", "in", "on", "background", "small", "large", "clothing", "item"];
        return fixedWords
            .Concat(ItemKinds.Words)
            .Concat(Palette.Select(c => c.Name))
            .Concat(Enum.GetValues<BackgroundPattern>().Select(PatternWord));
    }
}

/// <summary>Which contexts a scene may be drawn from: the narrow few-shot world, the shifted test world, or all.</summary>
public sealed record SceneDistribution(
    IReadOnlyList<BackgroundPattern> Patterns,
    IReadOnlyList<NamedColor> BackgroundColors,
    IReadOnlyList<NamedColor> ItemColors,
    float MinScale = 0.7f,
    float MaxScale = 1.1f,
    int MaxOffset = 3)
{
    /// <summary>Every pattern, colour, scale and position: what the generator is pretrained on.</summary>
    public static SceneDistribution Everything { get; } =
        new(Enum.GetValues<BackgroundPattern>(), Scene.Palette, Scene.Palette);

    /// <summary>The narrow context of the few-shot training sets: plain backgrounds in a few colours, centred items.</summary>
    public static SceneDistribution FewShot { get; } = new(
        [BackgroundPattern.Plain],
        Pick("black", "gray", "white"),
        Pick("red", "blue", "yellow", "green", "white", "black"),
        MinScale: 0.85f, MaxScale: 1.0f, MaxOffset: 1);

    /// <summary>The shifted test contexts (never in the few-shot set): patterned backgrounds in other colours.</summary>
    public static SceneDistribution Shifted { get; } = new(
        [BackgroundPattern.Gradient, BackgroundPattern.Stripes, BackgroundPattern.Checks, BackgroundPattern.Dots],
        Pick("orange", "purple", "pink", "green", "blue"),
        Scene.Palette);

    static NamedColor[] Pick(params string[] names) => names.Select(n => Scene.Palette.Single(c => c.Name == n)).ToArray();

    /// <summary>Draws a scene; the item colour always differs from the background colour so the item stays visible.</summary>
    public Scene Sample(Random random)
    {
        var pattern = Patterns[random.Next(Patterns.Count)];
        var background = BackgroundColors[random.Next(BackgroundColors.Count)];
        var candidates = ItemColors.Where(c => c.Name != background.Name).ToList();
        if (candidates.Count == 0) throw new InvalidOperationException("The scene distribution has no item colour that differs from the background colour.");
        var item = candidates[random.Next(candidates.Count)];
        float scale = MinScale + (float)random.NextDouble() * (MaxScale - MinScale);
        int dx = random.Next(-MaxOffset, MaxOffset + 1);
        int dy = random.Next(-MaxOffset, MaxOffset + 1);
        return new Scene(pattern, background, item, scale, dx, dy);
    }
}
