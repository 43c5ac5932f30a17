namespace DiffII.TinyWorld.Tests.Pretraining;

/// <summary>
/// Tests that build modules after <c>torch.manual_seed</c> and expect the same initial weights twice. libtorch's
/// default generator is process-wide, and every module constructor elsewhere in this assembly (a tiny experiment
/// loading the embedded model, say) draws from it; xUnit runs other test classes in parallel, so without this
/// collection a draw from another thread lands between the seed and the construction about one run in three.
/// DisableParallelization runs the collection alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalTorchRngCollection
{
    public const string Name = "global torch RNG";
}
