using DiffII.Storage;

namespace DiffII.Tests;

public class AtomicFileTests
{
    [Fact]
    public void Write_ReplacesWholeFiles_AndCleanUpRemovesLeftoverTemporaries()
    {
        string dir = Directory.CreateTempSubdirectory("diffii-atomic-").FullName;
        try
        {
            string path = Path.Combine(dir, "sub", "a.bin");
            AtomicFile.WriteAllBytes(path, [1, 2, 3]);
            AtomicFile.WriteAllBytes(path, [4, 5]);
            Assert.Equal([4, 5], File.ReadAllBytes(path));
            Assert.Single(Directory.GetFiles(Path.Combine(dir, "sub")));
            File.WriteAllBytes(Path.Combine(dir, "sub", ".b.png.123.abc" + AtomicFile.TempSuffix), [9]);
            Assert.Equal(1, AtomicFile.CleanUp(dir));
            Assert.Equal("a.bin", Path.GetFileName(Assert.Single(Directory.GetFiles(Path.Combine(dir, "sub")))));
        }
        finally { Directory.Delete(dir, true); }
    }
}
