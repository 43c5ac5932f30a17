namespace DiffII.Reliability.Tests.Matrix;

// One class per area, so xunit runs the areas in parallel; each row is its own test case.

public sealed class ImageMatrix
{
    public static TheoryData<string> Rows => ReliabilityMatrix.Ids(Area.Images);
    [Theory, MemberData(nameof(Rows))] public Task Row(string id) => ReliabilityMatrix.Run(id);
}

public sealed class DatasetMatrix
{
    public static TheoryData<string> Rows => ReliabilityMatrix.Ids(Area.Datasets);
    [Theory, MemberData(nameof(Rows))] public Task Row(string id) => ReliabilityMatrix.Run(id);
}

public sealed class ModelMatrix
{
    public static TheoryData<string> Rows => ReliabilityMatrix.Ids(Area.Models);
    [Theory, MemberData(nameof(Rows))] public Task Row(string id) => ReliabilityMatrix.Run(id);
}

public sealed class FaultMatrix
{
    public static TheoryData<string> Rows => ReliabilityMatrix.Ids(Area.Faults);
    [Theory, MemberData(nameof(Rows))] public Task Row(string id) => ReliabilityMatrix.Run(id);
}

public sealed class DeterminismMatrix
{
    public static TheoryData<string> Rows => ReliabilityMatrix.Ids(Area.Determinism);
    [Theory, MemberData(nameof(Rows))] public Task Row(string id) => ReliabilityMatrix.Run(id);
}

public sealed class FuzzMatrix
{
    public static TheoryData<string> Rows => ReliabilityMatrix.Ids(Area.Fuzz);
    [Theory, MemberData(nameof(Rows))] public Task Row(string id) => ReliabilityMatrix.Run(id);
}

public sealed class OptionsMatrix
{
    public static TheoryData<string> Rows => ReliabilityMatrix.Ids(Area.Options);
    [Theory, MemberData(nameof(Rows))] public Task Row(string id) => ReliabilityMatrix.Run(id);
}

public sealed class FoldersMatrix
{
    public static TheoryData<string> Rows => ReliabilityMatrix.Ids(Area.Folders);
    [Theory, MemberData(nameof(Rows))] public Task Row(string id) => ReliabilityMatrix.Run(id);
}

public sealed class ResourcesMatrix
{
    public static TheoryData<string> Rows => ReliabilityMatrix.Ids(Area.Resources);
    [Theory, MemberData(nameof(Rows))] public Task Row(string id) => ReliabilityMatrix.Run(id);
}
