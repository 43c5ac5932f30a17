using System.Reflection;
using TorchSharp;
using Xunit;

namespace DiffII.Testing;

/// <summary>
/// Finds, in an assembly's IL, every place that hands libtorch a TorchSharp <see cref="Scalar"/> which nothing keeps
/// alive (see <c>DiffII.Diffusion.Runtime.KeptScalars</c> for the fault): direct conversions of numbers to Scalars,
/// calls to TorchSharp methods that make such temporaries themselves (found the same way in TorchSharp.dll,
/// transitively: <c>a + b</c>, <c>x * 0.5</c>, <c>x.square()</c>, …), and TorchSharp modules and optimizers whose
/// forward or step does (BatchNorm, AdamW, SGD). Also torch Generators made without a <c>using</c>, the same fault
/// with another native object.
/// </summary>
public static class TemporaryScalarScan
{
    const string KeptScalars = "DiffII.Diffusion.Runtime.KeptScalars";

    static bool CreatesScalar(string callee) =>
        callee.StartsWith("TorchSharp.Scalar::op_Implicit(", StringComparison.Ordinal)
        || callee.StartsWith("TorchSharp.ScalarExtensionMethods::ToScalar(", StringComparison.Ordinal);

    static readonly Lazy<HashSet<string>> Methods = new(() =>
    {
        var calls = IlCallScanner.Calls(typeof(torch).Assembly.Location);
        var disposes = calls.Where(c => c.Callee == "TorchSharp.Scalar::Dispose()").Select(c => c.Caller).ToHashSet();
        var result = calls.Where(c => CreatesScalar(c.Callee) && !disposes.Contains(c.Caller)).Select(c => c.Caller).ToHashSet();
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var c in calls)
                if (result.Contains(c.Callee) && !c.Caller.StartsWith("TorchSharp.Scalar", StringComparison.Ordinal) && result.Add(c.Caller))
                    grew = true;
        }
        return result;
    });

    static readonly Lazy<HashSet<string>> Types = new(() => Methods.Value
        .Where(m => m.Contains("::forward(", StringComparison.Ordinal) || m.Contains("::step(", StringComparison.Ordinal)
                    || m.Contains("::<step>", StringComparison.Ordinal))
        .Select(m => m[..m.IndexOf("::", StringComparison.Ordinal)])
        .ToHashSet());

    /// <summary>TorchSharp methods that create a Scalar from a number without disposing it, and every TorchSharp method that calls one.</summary>
    public static IReadOnlySet<string> UnsafeTorchSharpMethods => Methods.Value;

    /// <summary>TorchSharp types whose forward or step (or a lambda inside step) makes a temporary Scalar.</summary>
    public static IReadOnlySet<string> UnsafeTorchSharpTypes => Types.Value;

    /// <summary>One line per offending call in <paramref name="assemblyPath"/>.</summary>
    public static List<string> Problems(string assemblyPath)
    {
        var problems = new List<string>();
        var calls = IlCallScanner.Calls(assemblyPath);
        foreach (var call in calls)
            if (Problem(call) is { } problem)
                problems.Add($"{Path.GetFileName(assemblyPath)}: {call.Caller} calls {call.Callee}: {problem}");
        // A torch Generator has a native handle and a finalizer too: one made for a call (randn(..., generator: new
        // Generator(7))) or left in a plain local can be freed during its last use. The method that makes one must
        // dispose of it (a using), which keeps it alive until then.
        foreach (var method in calls.GroupBy(c => c.Caller))
            if (method.Any(c => c.Callee.StartsWith("TorchSharp.torch+Generator::.ctor(", StringComparison.Ordinal))
                && !method.Any(c => c.Callee is "System.IDisposable::Dispose()" or "TorchSharp.torch+Generator::Dispose()"))
                problems.Add($"{Path.GetFileName(assemblyPath)}: {method.Key} makes a TorchSharp Generator without a using: it can be finalized while libtorch uses it");
        return problems.Distinct().ToList();
    }

    /// <summary>
    /// Fails with every offending call of the given assemblies, and what to use instead. Calls from
    /// <paramref name="exemptTypes"/> (and types nested in them) are left out: tests that compare with TorchSharp's own
    /// classes on purpose, where no other thread collects garbage.
    /// </summary>
    public static void AssertNone(IEnumerable<string> assemblyPaths, params string[] exemptTypes)
    {
        var problems = assemblyPaths.SelectMany(Problems)
            .Where(p => !exemptTypes.Any(t => p.Contains($": {t}::", StringComparison.Ordinal) || p.Contains($": {t}+", StringComparison.Ordinal)))
            .ToList();
        Assert.True(problems.Count == 0,
            $"{problems.Count} call(s) hand libtorch a temporary Scalar; use DiffII.Diffusion.Runtime.KeptScalars " +
            "(Add, Mul, Clamp, Arange, …), DiffII.Diffusion.Models.BatchNorm2d or DiffII.Diffusion.Training.AdamW/SGD, and `using var` for Generators:\n" +
            string.Join("\n", problems.Take(60)));
    }

    static string? Problem(IlCall call)
    {
        string callerType = call.Caller[..call.Caller.IndexOf("::", StringComparison.Ordinal)];
        if (CreatesScalar(call.Callee))
            return callerType == KeptScalars ? null : "converts a number to a Scalar that is not kept alive";
        if (Methods.Value.Contains(call.Callee))
            return "TorchSharp makes a temporary Scalar inside it";
        if (!call.Callee.StartsWith("TorchSharp.", StringComparison.Ordinal)) return null;
        var created = CreatedTypes(call.Callee).FirstOrDefault(t => BaseChain(t).Any(b => Types.Value.Contains(Name(b))));
        if (created is null) return null;
        // Our optimizers derive from TorchSharp's and replace the step; their constructors call the base constructor.
        if (callerType.StartsWith("DiffII.Diffusion.Training.", StringComparison.Ordinal) && call.Caller.Contains("::.ctor(", StringComparison.Ordinal))
            return null;
        return $"creates a {created.Name}, whose forward or step makes temporary Scalars";
    }

    /// <summary>The TorchSharp types a call creates: the type of a constructor, or the return types of a factory method.</summary>
    static IEnumerable<Type> CreatedTypes(string callee)
    {
        int split = callee.IndexOf("::", StringComparison.Ordinal);
        string typeName = callee[..split];
        string method = callee[(split + 2)..callee.IndexOf('(', split)];
        var type = typeof(torch).Assembly.GetType(typeName);
        if (type is null) return [];
        if (method == ".ctor") return [type];
        return type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance)
            .Where(m => m.Name == method)
            .Select(m => m.ReturnType);
    }

    static IEnumerable<Type> BaseChain(Type type)
    {
        for (Type? t = type; t is not null; t = t.BaseType) yield return t;
    }

    static string Name(Type type) => (type.FullName ?? type.Name).Split('`')[0];
}
