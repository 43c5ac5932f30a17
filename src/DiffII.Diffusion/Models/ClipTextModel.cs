using DiffII.Diffusion.Runtime;
using DiffII.Diffusion.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

#pragma warning disable IDE1006 // field names are the transformers attribute names, because they become the state-dict keys

namespace DiffII.Diffusion.Models;

/// <summary>
/// transformers' <c>CLIPTextModel</c>: the text tower Stable Diffusion conditions on. Its state-dict keys are exactly
/// transformers' (<c>text_model.embeddings.token_embedding.weight</c>, <c>text_model.encoder.layers.N.self_attn.q_proj.weight</c>, ...),
/// so a diffusers <c>text_encoder/model.safetensors</c> loads without a key map.
/// <c>forward</c> takes token ids [B, S] (S ≤ max_position_embeddings) and returns
/// <c>last_hidden_state</c> [B, S, hidden_size], after the final layer norm, as SD's pipelines use it.
/// </summary>
public sealed class ClipTextModel : nn.Module<Tensor, Tensor>
{
    /// <summary>The state-dict key of the position-ids buffer, which checkpoints may or may not contain.</summary>
    public const string PositionIdsKey = "text_model.embeddings.position_ids";

    public readonly ClipTextTransformer text_model;

    public ClipTextConfig Config { get; }

    public ClipTextModel(ClipTextConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32) : base(nameof(ClipTextModel))
    {
        config.Validate();
        Config = config;
        text_model = new ClipTextTransformer(config, device, dtype);
        RegisterComponents();
        this.DetachFromDisposeScopes();
    }

    /// <summary>Builds the model (random weights) from a <c>config.json</c>.</summary>
    public static ClipTextModel FromConfigFile(string configPath, Device? device = null, ScalarType dtype = ScalarType.Float32) =>
        new(ClipTextConfig.FromFile(configPath), device, dtype);

    /// <summary>The config with vocab_size equal to the current table (it grows when tokens are added).</summary>
    public ClipTextConfig CurrentConfig => Config with { VocabSize = (int)VocabSize };

    /// <summary>
    /// Textual inversion: from now on the embeddings of <paramref name="tokenIds"/> come from <paramref name="rows"/>
    /// ([n, hidden], a trainable parameter) instead of the table, so an optimiser over <paramref name="rows"/> learns
    /// those tokens and nothing else — no other row moves, not even through weight decay.
    /// </summary>
    public void TrainTokenRows(IReadOnlyList<int> tokenIds, Parameter rows)
    {
        foreach (var id in tokenIds) CheckTokenId(id, nameof(tokenIds));
        if (rows.dim() != 2 || rows.shape[0] != tokenIds.Count || rows.shape[1] != Config.HiddenSize)
            throw new ArgumentException($"Rows must have shape [{tokenIds.Count}, {Config.HiddenSize}], got [{string.Join(", ", rows.shape)}].", nameof(rows));
        text_model.embeddings.SetTrainableRows(tokenIds, rows);
    }

    /// <summary>Ends <see cref="TrainTokenRows"/>: the table is used for every token again (copy the rows in with <see cref="SetTokenEmbeddings"/>).</summary>
    public void StopTrainingTokenRows() => text_model.embeddings.SetTrainableRows(null, null);

    /// <summary>Builds the model from <c>config.json</c> and loads <c>model.safetensors</c> from a diffusers <c>text_encoder</c> folder.</summary>
    public static ClipTextModel FromPretrained(string folder, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var config = ClipTextConfig.FromFile(Path.Combine(folder, "config.json"));
        var model = new ClipTextModel(config, device, dtype);
        try
        {
            model.LoadWeights(Path.Combine(folder, "model.safetensors"));
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>
    /// Loads a CLIPTextModel safetensors file strictly, except that <see cref="PositionIdsKey"/> may be absent. Whatever
    /// the file holds there, the buffer ends as 0..max_pos-1: transformers ≥ 4.31 no longer reads it (some old
    /// checkpoints store it as float with rounding damage), so neither do we.
    /// </summary>
    /// <returns>The number of tensors copied.</returns>
    public int LoadWeights(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        return LoadWeights(new SafeTensorsSource(file));
    }

    /// <inheritdoc cref="LoadWeights(string)"/>
    public int LoadWeights(ITensorSource source)
    {
        int copied = StateDictLoader.Load(this, source, new StateDictLoadOptions { MayBeMissing = key => key == PositionIdsKey });
        text_model.embeddings.ResetPositionIds();
        return copied;
    }

    public override Tensor forward(Tensor inputIds) => text_model.forward(inputIds);

    /// <summary>
    /// transformers' <c>pooler_output</c>: the hidden state at each sequence's end-of-text token. Configs with the legacy
    /// eos_token_id 2 (SD 1.5/2.1) pool at argmax(ids), which is the EOT token only while it is the largest id in the
    /// vocabulary; newer configs pool at the first position equal to eos_token_id. Both exactly as transformers does.
    /// </summary>
    public Tensor PooledOutput(Tensor hidden, Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var ids = inputIds.to(hidden.device);
        var position = Config.EosTokenId == 2
            ? ids.to(ScalarType.Int32).argmax(-1)
            : ids.Eq(Config.EosTokenId).to(ScalarType.Int32).argmax(-1);
        var rows = KeptScalars.Arange(hidden.shape[0], ScalarType.Int64, hidden.device);
        return hidden.index(rows, position).MoveToOuterDisposeScope();
    }

    /// <summary>Rows in the token-embedding table (config vocab_size plus any added with <see cref="AddTokenEmbeddings(int, int)"/>).</summary>
    public long VocabSize => text_model.embeddings.token_embedding.weight!.shape[0];

    /// <summary>
    /// Grows the token-embedding table by <paramref name="count"/> rows, each a copy of row <paramref name="initFromTokenId"/>
    /// (textual inversion initialises new tokens from an existing word). Existing rows stay bit-identical.
    /// </summary>
    /// <returns>The ids of the new rows.</returns>
    public int[] AddTokenEmbeddings(int count, int initFromTokenId)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "At least one token must be added.");
        CheckTokenId(initFromTokenId, nameof(initFromTokenId));
        using var rows = text_model.embeddings.token_embedding.weight!.detach().narrow(0, initFromTokenId, 1).expand(count, -1).clone();
        return text_model.embeddings.AppendTokenRows(rows);
    }

    /// <summary>Grows the token-embedding table by the rows of <paramref name="initialRows"/> [count, hidden_size] (e.g. learned embeddings from a file).</summary>
    /// <returns>The ids of the new rows.</returns>
    public int[] AddTokenEmbeddings(Tensor initialRows)
    {
        long hidden = Config.HiddenSize;
        if (initialRows.dim() != 2 || initialRows.shape[1] != hidden || initialRows.shape[0] == 0)
            throw new ArgumentException($"New token embeddings must have shape [count ≥ 1, {hidden}], got [{string.Join(", ", initialRows.shape)}].", nameof(initialRows));
        return text_model.embeddings.AppendTokenRows(initialRows);
    }

    /// <summary>Copies of the embedding rows for <paramref name="tokenIds"/>, shape [n, hidden_size], detached.</summary>
    public Tensor GetTokenEmbeddings(IReadOnlyList<int> tokenIds)
    {
        foreach (var id in tokenIds) CheckTokenId(id, nameof(tokenIds));
        using var scope = NewDisposeScope();
        var weight = text_model.embeddings.token_embedding.weight!;
        var index = tensor(tokenIds.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: weight.device);
        return weight.detach().index_select(0, index).clone().MoveToOuterDisposeScope();
    }

    /// <summary>Overwrites the embedding rows for <paramref name="tokenIds"/> with <paramref name="rows"/> [n, hidden_size] (cast to the table's dtype and device).</summary>
    public void SetTokenEmbeddings(IReadOnlyList<int> tokenIds, Tensor rows)
    {
        foreach (var id in tokenIds) CheckTokenId(id, nameof(tokenIds));
        if (rows.dim() != 2 || rows.shape[0] != tokenIds.Count || rows.shape[1] != Config.HiddenSize)
            throw new ArgumentException($"Rows must have shape [{tokenIds.Count}, {Config.HiddenSize}], got [{string.Join(", ", rows.shape)}].", nameof(rows));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var weight = text_model.embeddings.token_embedding.weight!;
        var index = tensor(tokenIds.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: weight.device);
        weight.index_copy_(0, index, rows.to(weight.dtype, weight.device));
    }

    void CheckTokenId(int id, string parameter)
    {
        if (id < 0 || id >= VocabSize)
            throw new ArgumentOutOfRangeException(parameter, id, $"Token id {id} is outside the embedding table (0..{VocabSize - 1}).");
    }
}

/// <summary>transformers' <c>CLIPTextTransformer</c>: embeddings, pre-LN causal encoder, final layer norm.</summary>
public sealed class ClipTextTransformer : nn.Module<Tensor, Tensor>
{
    public readonly ClipTextEmbeddings embeddings;
    public readonly ClipEncoder encoder;
    public readonly LayerNorm final_layer_norm;

    public ClipTextTransformer(ClipTextConfig config, Device? device, ScalarType dtype) : base(nameof(ClipTextTransformer))
    {
        embeddings = new ClipTextEmbeddings(config, device, dtype);
        encoder = new ClipEncoder(config, device, dtype);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, eps: config.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var hidden = embeddings.forward(inputIds);
        hidden = encoder.forward(hidden);
        return final_layer_norm.call(hidden).MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' <c>CLIPTextEmbeddings</c>: token embedding plus learned absolute position embedding.</summary>
public sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    public Embedding token_embedding;
    public readonly Embedding position_embedding;
    /// <summary>int64 [1, max_position_embeddings] holding 0..max-1; persistent so that checkpoints that carry it load.</summary>
    public readonly Tensor position_ids;

    readonly int _maxPositions;
    readonly int _hidden;

    public ClipTextEmbeddings(ClipTextConfig config, Device? device, ScalarType dtype) : base(nameof(ClipTextEmbeddings))
    {
        _maxPositions = config.MaxPositionEmbeddings;
        _hidden = config.HiddenSize;
        token_embedding = nn.Embedding(config.VocabSize, config.HiddenSize, device: device, dtype: dtype);
        position_embedding = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize, device: device, dtype: dtype);
        position_ids = KeptScalars.Arange(config.MaxPositionEmbeddings, ScalarType.Int64, device).unsqueeze(0);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds)
    {
        if (inputIds.dim() != 2)
            throw new ArgumentException($"Token ids must have shape [batch, sequence], got [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        long length = inputIds.shape[1];
        if (length > _maxPositions)
            throw new ArgumentException($"Sequence length {length} exceeds max_position_embeddings ({_maxPositions}).", nameof(inputIds));
        using var scope = NewDisposeScope();
        var ids = inputIds.to(ScalarType.Int64, token_embedding.weight!.device);
        var positions = position_ids.narrow(1, 0, length);
        var tokens = token_embedding.call(ids);
        if (_trainableRows is not null)
        {
            // Tokens being learned take their vectors from the trainable rows; all others from the frozen table.
            var slot = _rowOfToken!.index_select(0, ids.flatten()).reshape(ids.shape);
            var learned = _trainableRows.index_select(0, slot.ClampMin(0).flatten()).reshape(tokens.shape).to(tokens.dtype);
            tokens = where(slot.Ge(0).unsqueeze(-1), learned, tokens);
        }
        return tokens.Add(position_embedding.call(positions)).MoveToOuterDisposeScope();
    }

    Parameter? _trainableRows;
    Tensor? _rowOfToken;

    internal void SetTrainableRows(IReadOnlyList<int>? tokenIds, Parameter? rows)
    {
        _rowOfToken?.Dispose();
        _rowOfToken = null;
        _trainableRows = rows;
        if (tokenIds is null || rows is null) return;
        var weight = token_embedding.weight!;
        var map = new long[weight.shape[0]];
        Array.Fill(map, -1L);
        for (int i = 0; i < tokenIds.Count; i++) map[tokenIds[i]] = i;
        _rowOfToken = tensor(map, ScalarType.Int64, weight.device).DetachFromDisposeScope();
    }

    internal void ResetPositionIds()
    {
        using var _ = no_grad();
        using var fresh = KeptScalars.Arange(_maxPositions, ScalarType.Int64, position_ids.device).unsqueeze(0);
        position_ids.copy_(fresh);
    }

    /// <summary>Replaces the token table by one with <paramref name="rows"/> appended; the old rows are copied bit for bit.</summary>
    internal int[] AppendTokenRows(Tensor rows)
    {
        var old = token_embedding;
        var oldWeight = old.weight!;
        long oldCount = oldWeight.shape[0];
        long newCount = oldCount + rows.shape[0];
        if (newCount > int.MaxValue) throw new InvalidOperationException("The token-embedding table would exceed int.MaxValue rows.");
        var grown = nn.Embedding(newCount, _hidden, device: oldWeight.device, dtype: oldWeight.dtype);
        grown.DetachFromDisposeScopes();
        using (no_grad())
        {
            var weight = grown.weight!;
            weight.narrow(0, 0, oldCount).copy_(oldWeight);
            weight.narrow(0, oldCount, rows.shape[0]).copy_(rows.to(oldWeight.dtype, oldWeight.device));
            weight.requires_grad_(oldWeight.requires_grad);
        }
        // TorchSharp refuses to register a name twice: unregister the old table, then register the new one under the same key.
        register_module(nameof(token_embedding), null!);
        register_module(nameof(token_embedding), grown);
        token_embedding = grown;
        old.Dispose();
        oldWeight.Dispose();
        return Enumerable.Range((int)oldCount, (int)(newCount - oldCount)).ToArray();
    }
}

/// <summary>transformers' <c>CLIPEncoder</c>: the stack of layers.</summary>
public sealed class ClipEncoder : nn.Module<Tensor, Tensor>
{
    public readonly ModuleList<ClipEncoderLayer> layers;

    public ClipEncoder(ClipTextConfig config, Device? device, ScalarType dtype) : base(nameof(ClipEncoder))
    {
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ClipEncoderLayer(config, device, dtype)).ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        foreach (var layer in layers) hidden = layer.call(hidden);
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' <c>CLIPEncoderLayer</c>: pre-LN residual attention, then pre-LN residual MLP.</summary>
public sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor>
{
    // Declaration order = transformers' construction order, so the state dict lists keys in the same order.
    public readonly ClipAttention self_attn;
    public readonly LayerNorm layer_norm1;
    public readonly ClipMlp mlp;
    public readonly LayerNorm layer_norm2;

    public ClipEncoderLayer(ClipTextConfig config, Device? device, ScalarType dtype) : base(nameof(ClipEncoderLayer))
    {
        self_attn = new ClipAttention(config, device, dtype);
        layer_norm1 = nn.LayerNorm(config.HiddenSize, eps: config.LayerNormEps, device: device, dtype: dtype);
        mlp = new ClipMlp(config, device, dtype);
        layer_norm2 = nn.LayerNorm(config.HiddenSize, eps: config.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        hidden = hidden.Add(self_attn.forward(layer_norm1.call(hidden)));
        hidden = hidden.Add(mlp.forward(layer_norm2.call(hidden)));
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' <c>CLIPAttention</c> with the causal mask CLIPTextModel always applies (no padding mask: SD passes none).</summary>
public sealed class ClipAttention : nn.Module<Tensor, Tensor>
{
    public readonly Linear k_proj;
    public readonly Linear v_proj;
    public readonly Linear q_proj;
    public readonly Linear out_proj;

    readonly int _heads;
    readonly int _headDim;

    public ClipAttention(ClipTextConfig config, Device? device, ScalarType dtype) : base(nameof(ClipAttention))
    {
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        k_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device, dtype: dtype);
        v_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device, dtype: dtype);
        q_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device, dtype: dtype);
        out_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        long batch = hidden.shape[0], length = hidden.shape[1];
        Tensor Heads(Tensor x) => x.view(batch, length, _heads, _headDim).transpose(1, 2);
        var q = Heads(q_proj.call(hidden));
        var k = Heads(k_proj.call(hidden));
        var v = Heads(v_proj.call(hidden));
        // SDPA's default scale is head_dim^-0.5, which is exactly CLIP's q scaling.
        var attended = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        var merged = attended.transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return out_proj.call(merged).MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' <c>CLIPMLP</c>: fc1, activation, fc2.</summary>
public sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    public readonly Linear fc1;
    public readonly Linear fc2;

    readonly string _activation;

    public ClipMlp(ClipTextConfig config, Device? device, ScalarType dtype) : base(nameof(ClipMlp))
    {
        _activation = config.HiddenAct;
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize, device: device, dtype: dtype);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var x = fc1.call(hidden);
        x = _activation switch
        {
            "quick_gelu" => x * sigmoid(x.Mul(1.702)),
            "gelu" => nn.functional.gelu(x),
            "gelu_new" => nn.functional.gelu(x, GELU.Approximate.tanh),
            _ => throw new InvalidOperationException($"Unsupported hidden_act '{_activation}'."),
        };
        return fc2.call(x).MoveToOuterDisposeScope();
    }
}
