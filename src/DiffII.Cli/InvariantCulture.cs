using System.Globalization;

namespace DiffII.Cli;

/// <summary>
/// Runs the command line under the invariant culture: every number the tool prints (messages, settings, reports,
/// JSON) reads the same under de_DE, tr_TR or fr_FR as under en_US, and so can be pasted back as an option. The
/// caller's culture is restored afterwards (tests run the tool in-process).
/// </summary>
public static class InvariantCulture
{
    public static async Task<T> Run<T>(Func<Task<T>> body)
    {
        var (culture, ui) = (CultureInfo.CurrentCulture, CultureInfo.CurrentUICulture);
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        CultureInfo.CurrentUICulture = CultureInfo.InvariantCulture;
        try { return await body(); }
        finally
        {
            CultureInfo.CurrentCulture = culture;
            CultureInfo.CurrentUICulture = ui;
        }
    }
}
