using DiffII.Reliability.Tests.Matrix;

namespace DiffII.Reliability.Tests.Rows;

public static class DeterminismRows
{
    public static IEnumerable<MatrixRow> All => [];
}
