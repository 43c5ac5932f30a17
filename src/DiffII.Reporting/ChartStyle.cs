using SkiaSharp;

namespace DiffII.Reporting;

/// <summary>Colours, text sizes and font choice shared by the charts. Sizes are pixels per em.</summary>
public sealed record ChartStyle
{
    public static ChartStyle Default { get; } = new();

    public SKColor Background { get; init; } = SKColors.White;
    public SKColor TextColor { get; init; } = new(0x22, 0x22, 0x22);
    public SKColor MutedTextColor { get; init; } = new(0x66, 0x66, 0x66);
    public SKColor AxisColor { get; init; } = new(0x44, 0x44, 0x44);
    public SKColor GridColor { get; init; } = new(0xE3, 0xE3, 0xE3);
    /// <summary>Error bars are drawn in this colour (not the series colour), so they stay visible on any bar.</summary>
    public SKColor ErrorBarColor { get; init; } = SKColors.Black;

    /// <summary>Series colours, reused cyclically (a colour-blind-friendly qualitative palette).</summary>
    public IReadOnlyList<SKColor> Palette { get; init; } =
    [
        new(0x1F, 0x77, 0xB4), // blue
        new(0xFF, 0x7F, 0x0E), // orange
        new(0x2C, 0xA0, 0x2C), // green
        new(0xD6, 0x27, 0x28), // red
        new(0x94, 0x67, 0xBD), // purple
        new(0x8C, 0x56, 0x4B), // brown
        new(0xE3, 0x77, 0xC2), // pink
        new(0x7F, 0x7F, 0x7F), // grey
        new(0xBC, 0xBD, 0x22), // olive
        new(0x17, 0xBE, 0xCF), // cyan
    ];

    public float TitleSize { get; init; } = 18;
    public float AxisTitleSize { get; init; } = 14;
    public float LabelSize { get; init; } = 13;
    public float TickLabelSize { get; init; } = 12;
    public float NoteSize { get; init; } = 11;
    /// <summary>Blank border around the whole picture.</summary>
    public float Margin { get; init; } = 14;

    public SKColor SeriesColor(int index)
    {
        if (Palette.Count == 0) throw new ArgumentException("The chart style's palette is empty.", nameof(Palette));
        return Palette[index % Palette.Count];
    }

    internal void Validate()
    {
        if (Palette is null || Palette.Count == 0) throw new ArgumentException("The chart style needs at least one palette colour.");
        foreach (var (name, value) in new[] { (nameof(TitleSize), TitleSize), (nameof(AxisTitleSize), AxisTitleSize), (nameof(LabelSize), LabelSize), (nameof(TickLabelSize), TickLabelSize), (nameof(NoteSize), NoteSize) })
            if (!(value > 0) || float.IsInfinity(value)) throw new ArgumentException($"The chart style's {name} must be a positive number; got {value}.");
        if (!(Margin >= 0) || float.IsInfinity(Margin)) throw new ArgumentException($"The chart style's {nameof(Margin)} must be a non-negative number; got {Margin}.");
    }
}
