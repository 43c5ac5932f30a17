namespace DiffII.TinyWorld;

/// <summary>
/// The coarse kinds of the tiny world's items, which pretraining captions name — as real Stable Diffusion learned
/// "shoe" or "bird" from captions, but not every model or species. The ten Fashion-MNIST classes are never named:
/// telling a t-shirt from a shirt from a pullover from a coat, or a sandal from a sneaker from an ankle boot, is left
/// to concept learning, which is the fine-grained job the paper gives it.
/// </summary>
public static class ItemKinds
{
    /// <summary>Kind words, indexed by kind.</summary>
    public static readonly IReadOnlyList<string> Words = ["top", "trousers", "dress", "footwear", "bag"];

    /// <summary>The kind of each Fashion-MNIST class, in label order (t-shirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle boot).</summary>
    static readonly int[] KindOfLabel = [0, 1, 0, 2, 0, 3, 0, 3, 4, 3];

    public static int KindOf(int label) => KindOfLabel[label];

    public static string WordOf(int label) => Words[KindOfLabel[label]];

    /// <summary>The labels of one kind (what a picture prompted with that kind may be judged as).</summary>
    public static IReadOnlyList<int> LabelsOf(int kind) => Enumerable.Range(0, KindOfLabel.Length).Where(l => KindOfLabel[l] == kind).ToArray();
}
