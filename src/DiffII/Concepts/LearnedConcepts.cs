using System.Text.Json;
using System.Text.Json.Serialization;
using DiffII.Diffusion;
using DiffII.Diffusion.IO;
using DiffII.Diffusion.Lora;
using DiffII.Diffusion.Models;
using DiffII.Diffusion.Pipelines;
using DiffII.Storage;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffII.Concepts;

/// <summary>What is trainable while concepts are learned: the new token rows ([classes, hidden]) and the LoRA, if any.</summary>
public sealed record ConceptTraining(IReadOnlyList<Parameter> TokenRows, UNetLora? Lora);

/// <summary>
/// The outcome of concept learning: one placeholder token and its embedding per class, and the U-Net LoRA. Saved in
/// the formats diffusers and Diff-Mix use (<c>learned_embeds.safetensors</c> as {token: vector},
/// <c>pytorch_lora_weights.safetensors</c> in the attention-processor layout) plus <c>concepts.json</c>.
/// </summary>
public sealed class LearnedConcepts
{
    public const string EmbeddingsFile = "learned_embeds.safetensors";
    public const string LoraFile = "pytorch_lora_weights.safetensors";
    public const string DescriptionFile = "concepts.json";

    LearnedConcepts(string metaclass, IReadOnlyList<string> classNames, IReadOnlyList<string> tokens, Tensor embeddings)
    {
        Metaclass = metaclass; ClassNames = classNames; Tokens = tokens; Embeddings = embeddings;
    }

    public string Metaclass { get; }
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>The placeholder token of each class, e.g. "&lt;class_3&gt;".</summary>
    public IReadOnlyList<string> Tokens { get; }
    /// <summary>[classes, hidden] float32 on the CPU.</summary>
    public Tensor Embeddings { get; private set; }
    /// <summary>The LoRA weights (diffusers attn-proc keys), or null for tokens-only concepts.</summary>
    public Dictionary<string, Tensor>? LoraWeights { get; private set; }
    public IReadOnlyList<double> Losses { get; private set; } = [];

    /// <summary>
    /// Steps whose loss or gradient was non-finite once and that were run again on the same batch (0 in a healthy run;
    /// see <see cref="ConceptLearner"/>). Not saved: a recovered step leaves the same concepts, and saved results of
    /// runs with the same seed must be byte-identical.
    /// </summary>
    public int RetriedSteps { get; private set; }

    /// <summary>The learned prompt of a class: "a photo of a &lt;class_i&gt; &lt;metaclass&gt;".</summary>
    public string Prompt(int classIndex, string? suffix = null) =>
        $"a photo of a {Tokens[classIndex]} {Metaclass}" + (string.IsNullOrWhiteSpace(suffix) ? "" : " " + suffix.Trim());

    /// <summary>New concepts whose tokens start as the metaclass word's embedding (the mean over its tokens if it has several).</summary>
    public static LearnedConcepts Initialise(StableDiffusion sd, IReadOnlyList<string> classNames, string metaclass)
    {
        var wordIds = sd.Tokenizer.Encode(metaclass, addSpecialTokens: false);
        if (wordIds.Count == 0) throw new ArgumentException($"The metaclass '{metaclass}' tokenises to nothing.", nameof(metaclass));
        Tensor init;
        using (no_grad())
            init = sd.TextEncoder.GetTokenEmbeddings(wordIds).to(ScalarType.Float32, CPU).mean([0]);
        var tokens = Enumerable.Range(0, classNames.Count).Select(ConceptOptions.Placeholder).ToList();
        return new LearnedConcepts(metaclass, classNames, tokens, init.unsqueeze(0).expand(classNames.Count, -1).clone());
    }

    /// <summary>Adds the tokens to the model and makes their rows (and a fresh LoRA of <paramref name="loraRank"/> &gt; 0) trainable.</summary>
    public ConceptTraining BeginTraining(StableDiffusion sd, int loraRank, Generator? generator = null)
    {
        int[] ids = EnsureTokens(sd);
        var rows = new Parameter(Embeddings.to(sd.DType, sd.Device).clone(), requires_grad: true);
        sd.TextEncoder.TrainTokenRows(ids, rows);
        var lora = loraRank > 0 ? UNetLora.Attach(sd.Unet, loraRank, generator: generator) : null;
        return new ConceptTraining([rows], lora);
    }

    /// <summary>Keeps what was learned: rows into the embedding table and this object, LoRA weights copied out and left attached.</summary>
    public void EndTraining(StableDiffusion sd, ConceptTraining training, IReadOnlyList<double> losses, int retriedSteps = 0)
    {
        RetriedSteps = retriedSteps;
        using (no_grad())
            Embeddings = training.TokenRows[0].detach().to(ScalarType.Float32, CPU).clone();
        sd.TextEncoder.StopTrainingTokenRows();
        sd.TextEncoder.SetTokenEmbeddings(EnsureTokens(sd), Embeddings);
        if (training.Lora is not null)
            LoraWeights = training.Lora.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(ScalarType.Float32, CPU).clone());
        Losses = losses.ToList();
    }

    /// <summary>Rows keyed by token, the learned_embeds layout.</summary>
    internal Dictionary<string, Tensor> TokenRowsByName(IReadOnlyList<Parameter> rows) =>
        Tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => rows[0][p.i].detach().to(ScalarType.Float32, CPU).clone());

    /// <summary>
    /// Prepares <paramref name="sd"/> to generate with these concepts: adds the tokens and their embeddings, and
    /// attaches the LoRA (merged into the weights by default, the fast path for inference).
    /// </summary>
    /// <returns>The attached LoRA (dispose or <see cref="UNetLora.Detach"/> to remove it), or null for tokens-only concepts.</returns>
    public UNetLora? ApplyTo(StableDiffusion sd, bool mergeLora = true)
    {
        sd.TextEncoder.SetTokenEmbeddings(EnsureTokens(sd), Embeddings);
        if (LoraWeights is null) return null;
        string temp = Path.Combine(Path.GetTempPath(), $"diffii-lora-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensorsFile.Save(temp, LoraWeights);
            var lora = UNetLora.Load(sd.Unet, temp);
            if (mergeLora) lora.Merge();
            return lora;
        }
        finally { File.Delete(temp); }
    }

    /// <summary>Adds each placeholder to the tokenizer and the embedding table when missing; returns their ids.</summary>
    int[] EnsureTokens(StableDiffusion sd)
    {
        var ids = new int[Tokens.Count];
        var missing = new List<int>();
        for (int i = 0; i < Tokens.Count; i++)
            if (!sd.Tokenizer.TryGetTokenId(Tokens[i], out ids[i])) missing.Add(i);
        if (missing.Count > 0)
        {
            var added = sd.Tokenizer.AddTokens(missing.Select(i => Tokens[i]).ToList());
            var tableIds = sd.TextEncoder.AddTokenEmbeddings(Embeddings.index_select(0, tensor(missing.Select(i => (long)i).ToArray())).to(sd.DType, sd.Device));
            for (int k = 0; k < missing.Count; k++)
            {
                if (added[k] != tableIds[k])
                    throw new InvalidOperationException($"Token '{Tokens[missing[k]]}' got id {added[k]} in the tokenizer but row {tableIds[k]} in the embedding table; they must stay in step.");
                ids[missing[k]] = added[k];
            }
        }
        return ids;
    }

    sealed record Description(
        [property: JsonPropertyName("metaclass")] string Metaclass,
        [property: JsonPropertyName("classes")] IReadOnlyList<ClassToken> Classes,
        [property: JsonPropertyName("has_lora")] bool HasLora,
        [property: JsonPropertyName("losses")] IReadOnlyList<double> Losses);

    sealed record ClassToken([property: JsonPropertyName("name")] string Name, [property: JsonPropertyName("token")] string Token);

    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        SafeTensorsFile.Save(Path.Combine(folder, EmbeddingsFile), Tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => Embeddings[p.i]));
        if (LoraWeights is not null) SafeTensorsFile.Save(Path.Combine(folder, LoraFile), LoraWeights, new Dictionary<string, string> { ["format"] = "pt" });
        var description = new Description(Metaclass, ClassNames.Select((n, i) => new ClassToken(n, Tokens[i])).ToList(), LoraWeights is not null, Losses);
        AtomicFile.WriteAllText(Path.Combine(folder, DescriptionFile), JsonSerializer.Serialize(description, new JsonSerializerOptions { WriteIndented = true }));
    }

    public static bool Exists(string folder) => File.Exists(Path.Combine(folder, DescriptionFile));

    public static LearnedConcepts Load(string folder)
    {
        string path = Path.Combine(folder, DescriptionFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"No learned concepts in {folder} (missing {DescriptionFile}).", path);
        var description = JsonFile.ReadExisting<Description>(path);
        var concepts = FromFiles(Path.Combine(folder, EmbeddingsFile), description.HasLora ? Path.Combine(folder, LoraFile) : null,
            description.Classes.Select(c => c.Name).ToList(), description.Metaclass, description.Classes.Select(c => c.Token).ToList());
        concepts.Losses = description.Losses;
        return concepts;
    }

    /// <summary>
    /// Concepts trained elsewhere (e.g. by Diff-Mix's scripts): a {token: vector} embeddings file and an optional
    /// LoRA file. <paramref name="tokens"/> names each class's token in the file (default "&lt;class_i&gt;").
    /// </summary>
    public static LearnedConcepts FromFiles(string embeddingsPath, string? loraPath, IReadOnlyList<string> classNames, string metaclass, IReadOnlyList<string>? tokens = null)
    {
        tokens ??= Enumerable.Range(0, classNames.Count).Select(ConceptOptions.Placeholder).ToList();
        if (tokens.Count != classNames.Count) throw new ArgumentException($"{tokens.Count} tokens for {classNames.Count} classes.");
        var rows = SafeTensorsFile.LoadAll(embeddingsPath, ScalarType.Float32);
        var missing = tokens.Where(t => !rows.ContainsKey(t)).ToList();
        if (missing.Count > 0)
            throw new CheckpointMismatchException($"{embeddingsPath} has no embedding for {string.Join(", ", missing.Take(5))}; it holds {string.Join(", ", rows.Keys.Take(5))}{(rows.Count > 5 ? ", …" : "")}.");
        var embeddings = stack(tokens.Select(t => rows[t].reshape(-1)).ToArray());
        var concepts = new LearnedConcepts(metaclass, classNames, tokens, embeddings);
        if (loraPath is not null) concepts.LoraWeights = SafeTensorsFile.LoadAll(loraPath, ScalarType.Float32);
        return concepts;
    }
}
