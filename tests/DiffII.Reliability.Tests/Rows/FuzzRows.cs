using DiffII.Reliability.Tests.Matrix;

namespace DiffII.Reliability.Tests.Rows;

public static class FuzzRows
{
    public static IEnumerable<MatrixRow> All => [];
}
