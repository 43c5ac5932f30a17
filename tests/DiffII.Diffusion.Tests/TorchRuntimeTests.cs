using Training = DiffII.Diffusion.Training;
using DiffII.Build;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests;

public class TorchRuntimeTests
{
    [Fact]
    public void SmallModule_ForwardBackwardAdamWSdpaAndSave_WorkOnCpu()
    {
        TorchRuntime.EnsureLoaded();
        using var scope = NewDisposeScope();
        manual_seed(7);
        var model = nn.Sequential(("fc1", nn.Linear(8, 16)), ("act", nn.SiLU()), ("fc2", nn.Linear(16, 1)));
        var optimizer = new Training.AdamW(model.parameters(), lr: 1e-2, weight_decay: 1e-2);
        var x = randn(64, 8);
        var y = x.sum(1, keepdim: true);
        float first = 0, last = 0;
        for (int step = 0; step < 60; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.mse_loss(model.forward(x), y);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.True(last < first * 0.5f, $"loss went from {first} to {last}");

        // Scaled dot-product attention against the written-out formula.
        var q = randn(2, 4, 5, 8); var k = randn(2, 4, 6, 8); var v = randn(2, 4, 6, 8);
        var sdpa = nn.functional.scaled_dot_product_attention(q, k, v);
        var manual = softmax(matmul(q, k.transpose(-1, -2)).Div(Math.Sqrt(8)), -1).matmul(v);
        Assert.True(allclose(sdpa, manual, rtol: 1e-4, atol: 1e-5));

        string path = Path.Combine(Path.GetTempPath(), $"diffii-torch-{Guid.NewGuid():N}.bin");
        try
        {
            model.save(path);
            var copy = nn.Sequential(("fc1", nn.Linear(8, 16)), ("act", nn.SiLU()), ("fc2", nn.Linear(16, 1)));
            copy.load(path);
            Assert.True(allclose(model.forward(x), copy.forward(x)));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void OutputCopyOfLibTorchSharp_HasItsGlibcxx3432NeedMarkedWeak_AndNothingElseChanged()
    {
        if (!OperatingSystem.IsLinux()) return;
        string lib = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        Assert.True(File.Exists(lib), $"{lib} is missing from the test output");
        var needs = ElfVersionNeeds.ReadNeeds(File.ReadAllBytes(lib));
        var glibcxx3432 = Assert.Single(needs, n => n.Version == "GLIBCXX_3.4.32");
        Assert.Equal("libstdc++.so.6", glibcxx3432.Library);
        Assert.True(glibcxx3432.IsWeak);
        Assert.All(needs.Where(n => n.Version != "GLIBCXX_3.4.32"), n => Assert.False(n.IsWeak, $"{n.Version} should stay strong"));
        Assert.Equal(["_ZSt21ios_base_library_initv"], ElfVersionNeeds.SymbolsBoundTo(File.ReadAllBytes(lib), glibcxx3432.Index));
        Assert.Null(TorchRuntime.MissingLibstdcxxVersions(lib, out _));
    }

    [Fact]
    public void Weaken_RefusesWhenAVersionIsBoundToASymbolOutsideTheAllowList()
    {
        if (!OperatingSystem.IsLinux()) return;
        byte[] bytes = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"));
        // GLIBCXX_3.4.30 is bound to symbols the library really calls: weakening it must be refused.
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.Weaken(bytes, ["GLIBCXX_3.4.30"], ["_ZSt21ios_base_library_initv"], out _));
        Assert.Contains("GLIBCXX_3.4.30", e.Message);
    }

    [Fact]
    public void Explain_NamesTheMissingVersionAndTheFix_ForAnUnpatchedCopy()
    {
        if (!OperatingSystem.IsLinux()) return;
        string lib = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        byte[] bytes = File.ReadAllBytes(lib);
        var need = ElfVersionNeeds.ReadNeeds(bytes).Single(n => n.Version == "GLIBCXX_3.4.32");
        // Undo the build's patch in a scratch copy, as if the build step had not run.
        ushort strong = (ushort)(need.Flags & ~ElfVersionNeeds.VerFlagWeak);
        bytes[need.FlagsOffset] = (byte)strong; bytes[need.FlagsOffset + 1] = (byte)(strong >> 8);
        string copy = Path.Combine(Path.GetTempPath(), $"diffii-unpatched-{Guid.NewGuid():N}.so");
        File.WriteAllBytes(copy, bytes);
        try
        {
            string? missing = TorchRuntime.MissingLibstdcxxVersions(copy, out string? system);
            if (system is null) return; // no system libstdc++ found at the usual places: nothing to compare with
            var defined = ElfVersionNeeds.ReadDefinitions(File.ReadAllBytes(system));
            if (defined.Contains("GLIBCXX_3.4.32")) Assert.Null(missing); // GCC 13+ systems need no patch
            else Assert.Equal("GLIBCXX_3.4.32", missing);
        }
        finally { File.Delete(copy); }
    }

    [Fact]
    public void Explain_ForAPortableOutputWithAnUnpatchedCopy_NamesTheMissingVersionNotAMissingBackend()
    {
        if (!OperatingSystem.IsLinux()) return;
        string? system = null;
        foreach (var dir in new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64" })
            if (File.Exists(Path.Combine(dir, "libstdc++.so.6"))) { system = Path.Combine(dir, "libstdc++.so.6"); break; }
        if (system is null || ElfVersionNeeds.ReadDefinitions(File.ReadAllBytes(system)).Contains("GLIBCXX_3.4.32"))
            return; // this system's libstdc++ is new enough: there is nothing to explain
        byte[] bytes = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"));
        var need = ElfVersionNeeds.ReadNeeds(bytes).Single(n => n.Version == "GLIBCXX_3.4.32");
        ushort strong = (ushort)(need.Flags & ~ElfVersionNeeds.VerFlagWeak);
        bytes[need.FlagsOffset] = (byte)strong; bytes[need.FlagsOffset + 1] = (byte)(strong >> 8);
        // A portable (no runtime identifier) application keeps the library under runtimes/<rid>/native.
        string app = Path.Combine(Path.GetTempPath(), $"diffii-portable-{Guid.NewGuid():N}");
        string native = Path.Combine(app, "runtimes", "linux-x64", "native");
        Directory.CreateDirectory(native);
        File.WriteAllBytes(Path.Combine(native, "libLibTorchSharp.so"), bytes);
        try
        {
            string message = TorchRuntime.Explain(DeviceType.CPU, new InvalidOperationException("TorchSharp's own message"), app);
            Assert.Contains("GLIBCXX_3.4.32", message);
            Assert.Contains(Path.Combine(native, "libLibTorchSharp.so"), message);
            Assert.Contains("DiffII.Diffusion", message);
            Assert.DoesNotContain("was found neither", message);
        }
        finally { Directory.Delete(app, recursive: true); }
    }

    [Fact]
    public void Explain_WithNoNativeLibraryAnywhere_SaysToReferenceABackendPackage()
    {
        if (!OperatingSystem.IsLinux()) return;
        string app = Path.Combine(Path.GetTempPath(), $"diffii-empty-{Guid.NewGuid():N}");
        Directory.CreateDirectory(app);
        try
        {
            string message = TorchRuntime.Explain(DeviceType.CPU, new InvalidOperationException("x"), app);
            Assert.Contains("TorchSharp-cpu", message);
            Assert.Contains("was found neither", message);
        }
        finally { Directory.Delete(app, recursive: true); }
    }

    [Fact]
    public void EnsureLoaded_TurnsLibtorchsNnpackPathOff_SoUnsupportedHostsPrintNoWarningPerConvolution()
    {
        TorchRuntime.EnsureLoaded();
        Assert.Equal(false, NnpackSwitch.IsEnabled());
        // A convolution of the shape libtorch would hand to NNPACK (float32, batch >= 16, stride 1) still computes.
        using var scope = NewDisposeScope();
        var x = ones(16, 3, 8, 8);
        var w = ones(4, 3, 3, 3);
        var y = nn.functional.conv2d(x, w, padding: [1L, 1L]);
        Assert.Equal(27f, y[0, 0, 4, 4].item<float>());
    }
}
