using ScottPlot;
using SkiaSharp;

namespace DiffII.Reporting;

/// <summary>Horizontal anchoring of a text run.</summary>
public enum TextAlign { Left, Center, Right }

/// <summary>
/// The one font of every report: DejaVu Sans, embedded in this assembly (licence in Fonts/DejaVuSans-LICENSE.txt).
/// The SkiaSharp "NoDependencies" native has no fontconfig, so system fonts may have no glyphs at all; a bundled
/// font makes charts and grids draw the same on every machine. ScottPlot resolves <see cref="Family"/> to it.
/// </summary>
public static class ReportFont
{
    /// <summary>The family name charts ask ScottPlot for.</summary>
    public const string Family = "DejaVu Sans";

    const string ResourceName = "DiffII.Reporting.DejaVuSans.ttf";
    static readonly Lazy<SKTypeface> Face = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);
    static readonly Lazy<bool> Registered = new(Register, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The bundled typeface (shared; do not dispose).</summary>
    public static SKTypeface Typeface => Face.Value;

    /// <summary>Makes every label of <paramref name="plot"/> use the bundled font.</summary>
    public static void Apply(Plot plot)
    {
        ArgumentNullException.ThrowIfNull(plot);
        _ = Registered.Value;
        plot.Font.Set(Family);
    }

    static SKTypeface Load()
    {
        using var stream = typeof(ReportFont).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded font '{ResourceName}' is missing from {typeof(ReportFont).Assembly.GetName().Name}.");
        var data = SKData.Create(stream);
        return SKTypeface.FromData(data)
            ?? throw new InvalidOperationException($"Skia could not load the embedded font '{ResourceName}'.");
    }

    static bool Register()
    {
        // Resolvers are asked before the system's fonts, so asking for Family never reaches fontconfig.
        Fonts.FontResolvers.Insert(0, new BundledFontResolver());
        return true;
    }

    sealed class BundledFontResolver : IFontResolver
    {
        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing spacing) =>
            Matches(fontName) ? Typeface : null;

        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) => Matches(fontName) ? Typeface : null;

        static bool Matches(string fontName) => string.Equals(fontName, Family, StringComparison.OrdinalIgnoreCase);
    }
}
