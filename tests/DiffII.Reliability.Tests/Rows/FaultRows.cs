using DiffII.Reliability.Tests.Matrix;

namespace DiffII.Reliability.Tests.Rows;

public static class FaultRows
{
    public static IEnumerable<MatrixRow> All => [];
}
