using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests;

public class StateDictLoaderTests
{
    static nn.Module Model() => nn.Sequential(("proj", nn.Linear(4, 3)), ("norm", nn.LayerNorm(3)));

    [Fact]
    public void Load_CopiesEveryWeight_CastingFromFp16()
    {
        var model = Model();
        var weights = new Dictionary<string, Tensor>
        {
            ["proj.weight"] = ones(3, 4, dtype: ScalarType.Float16),
            ["proj.bias"] = KeptScalars.Full([3], 0.5, ScalarType.Float16),
            ["norm.weight"] = KeptScalars.Full([3], 2.0),
            ["norm.bias"] = zeros(3),
        };
        Assert.Equal(4, StateDictLoader.Load(model, new DictionarySource("mem", weights)));
        var sd = model.state_dict();
        Assert.Equal(ScalarType.Float32, sd["proj.weight"].dtype);
        Assert.Equal(0.5f, sd["proj.bias"][1].item<float>());
    }

    [Fact]
    public void Load_WrongShapeMissingAndExtraKeys_AreOneErrorNamingEachKeyAndBothShapes()
    {
        var model = Model();
        var before = model.state_dict()["proj.weight"].clone();
        var weights = new Dictionary<string, Tensor>
        {
            ["proj.weight"] = ones(4, 3),
            ["norm.weight"] = ones(3),
            ["norm.bias"] = zeros(3),
            ["proj.extra"] = zeros(1),
        };
        var e = Assert.Throws<CheckpointMismatchException>(() => StateDictLoader.Load(model, new DictionarySource("weights.safetensors", weights)));
        Assert.Contains("weights.safetensors", e.Message);
        Assert.Contains("'proj.weight': the model expects shape [3, 4], the file has [4, 3]", e.Message);
        Assert.Contains("missing 'proj.bias' (expected shape [3])", e.Message);
        Assert.Contains("unexpected 'proj.extra'", e.Message);
        Assert.True(model.state_dict()["proj.weight"].eq(before).all().item<bool>(), "nothing may be copied when the load fails");
    }

    [Fact]
    public void Load_AllowsDeclaredOptionalAndExtraKeys()
    {
        var model = Model();
        var weights = new Dictionary<string, Tensor>
        {
            ["proj.weight"] = ones(3, 4), ["norm.weight"] = ones(3), ["norm.bias"] = zeros(3), ["position_ids"] = zeros(1),
        };
        var options = new StateDictLoadOptions { MayBeMissing = k => k == "proj.bias", MayBeExtra = k => k == "position_ids" };
        Assert.Equal(3, StateDictLoader.Load(model, new DictionarySource("mem", weights), options));
    }
}
