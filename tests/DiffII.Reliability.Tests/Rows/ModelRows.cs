using DiffII.Reliability.Tests.Matrix;

namespace DiffII.Reliability.Tests.Rows;

public static class ModelRows
{
    public static IEnumerable<MatrixRow> All => [];
}
