using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.Experiments.Classification;

/// <summary>
/// One class's share of a test set: how many examples it has (<see cref="Support"/>), how many of them were predicted
/// right, its accuracy (that ratio, the class's recall) and precision. Counts are doubles because ML.NET's confusion
/// matrix sums example weights. Accuracy is NaN for a class with no test examples, precision for a class never predicted.
/// </summary>
public sealed record ClassMetrics(string ClassName, double Support, double Correct, double Accuracy, double Precision);

/// <summary>Per-class accuracy from a confusion matrix, for long-tail reports where micro accuracy hides the rare classes.</summary>
public static class PerClassMetrics
{
    /// <summary>
    /// Reads <paramref name="matrix"/> (rows are actual classes, columns predicted, as ML.NET lays them out);
    /// <paramref name="classNames"/> name its classes in key order (key 1 first).
    /// </summary>
    public static IReadOnlyList<ClassMetrics> FromConfusionMatrix(ConfusionMatrix matrix, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(classNames);
        int n = matrix.NumberOfClasses;
        if (classNames.Count != n)
            throw new ArgumentException($"The confusion matrix has {n} classes but {classNames.Count} class names were given ({string.Join(", ", classNames)}).", nameof(classNames));
        var counts = matrix.Counts;
        var result = new ClassMetrics[n];
        for (int actual = 0; actual < n; actual++)
        {
            double support = counts[actual].Sum();
            double correct = counts[actual][actual];
            double predicted = Enumerable.Range(0, n).Sum(row => counts[row][actual]);
            result[actual] = new ClassMetrics(classNames[actual], support, correct,
                support > 0 ? correct / support : double.NaN,
                predicted > 0 ? correct / predicted : double.NaN);
        }
        return result;
    }

    /// <summary>Per-class metrics of <paramref name="metrics"/>, naming classes by the key values of <paramref name="labelKeyColumn"/>.</summary>
    public static IReadOnlyList<ClassMetrics> FromMetrics(MulticlassClassificationMetrics metrics, DataViewSchema.Column labelKeyColumn) =>
        FromConfusionMatrix(metrics.ConfusionMatrix, ClassNames(labelKeyColumn));

    /// <summary>The class names of a key column in key order (key 1 first), or the key numbers when it has no key values.</summary>
    public static IReadOnlyList<string> ClassNames(DataViewSchema.Column labelKeyColumn)
    {
        if (labelKeyColumn.Type is not KeyDataViewType key)
            throw new ArgumentException($"The column '{labelKeyColumn.Name}' has type {labelKeyColumn.Type}; class names come from a key column (MapValueToKey).", nameof(labelKeyColumn));
        if (!labelKeyColumn.HasKeyValues())
            return Enumerable.Range(1, checked((int)key.Count)).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        VBuffer<ReadOnlyMemory<char>> values = default;
        labelKeyColumn.GetKeyValues(ref values);
        return values.DenseValues().Select(v => v.ToString()).ToArray();
    }

    /// <summary>A fixed-width text table: class, support, correct, accuracy, precision; rarest classes first.</summary>
    public static string ToTable(IEnumerable<ClassMetrics> classes)
    {
        var rows = classes.OrderBy(c => c.Support).ThenBy(c => c.ClassName, StringComparer.Ordinal).ToList();
        int width = Math.Max("Class".Length, rows.Count == 0 ? 0 : rows.Max(r => r.ClassName.Length));
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{"Class".PadRight(width)}  {"Support",8}  {"Correct",8}  {"Accuracy",8}  {"Precision",9}\n");
        foreach (var r in rows)
            text.Append(CultureInfo.InvariantCulture, $"{r.ClassName.PadRight(width)}  {r.Support,8:0.##}  {r.Correct,8:0.##}  {Format(r.Accuracy),8}  {Format(r.Precision),9}\n");
        return text.ToString();
    }

    internal static string Format(double value) => double.IsNaN(value) ? "-" : value.ToString("0.0000", CultureInfo.InvariantCulture);
}
