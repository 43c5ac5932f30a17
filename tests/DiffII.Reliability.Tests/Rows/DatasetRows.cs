using DiffII.Reliability.Tests.Matrix;

namespace DiffII.Reliability.Tests.Rows;

public static class DatasetRows
{
    public static IEnumerable<MatrixRow> All => [];
}
