using DiffII.Diffusion.Models;
using DiffII.Diffusion.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffII.Diffusion.Tests.Models;

public class AttentionTests
{
    public AttentionTests() => TorchRuntime.EnsureLoaded();

    /// <summary>diffusers' classic AttnProcessor written out: softmax(q·kᵀ·d^-½)·v per head, in float64.</summary>
    static Tensor Reference(Attention a, Tensor x, Tensor? context)
    {
        using var scope = NewDisposeScope();
        var x64 = x.to(ScalarType.Float64);
        var c64 = (context ?? x).to(ScalarType.Float64);
        Tensor Lin(TorchSharp.Modules.Linear l, Tensor t) => nn.functional.linear(t, l.weight.to(ScalarType.Float64), l.bias?.to(ScalarType.Float64));
        Tensor Heads(Tensor t) => t.view(t.shape[0], t.shape[1], a.Heads, a.HeadDim).transpose(1, 2);
        var q = Heads(Lin(a.to_q, x64));
        var k = Heads(Lin(a.to_k, c64));
        var v = Heads(Lin(a.to_v, c64));
        var probs = q.matmul(k.transpose(-1, -2)).Mul(Math.Pow(a.HeadDim, -0.5)).softmax(-1);
        var o = probs.matmul(v).transpose(1, 2).reshape(x.shape[0], x.shape[1], a.InnerDim);
        return Lin((TorchSharp.Modules.Linear)a.to_out[0], o).MoveToOuterDisposeScope();
    }

    [Fact]
    public void CrossAttention_MatchesWrittenOutFormula()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(11);
        var attention = new Attention(queryDim: 24, crossAttentionDim: 10, heads: 3, headDim: 8, bias: false);
        var x = randn(2, 5, 24);
        var context = randn(2, 7, 10);
        Assert.True(attention.IsCrossAttention);
        Assert.Equal((24, 10, 24), (attention.QueryDim, attention.KeyValueInputDim, attention.InnerDim));
        Assert.Null(attention.to_q.bias);
        Assert.Contains("to_out.0.weight", attention.state_dict().Keys);
        TensorAssert.Close(Reference(attention, x, context), attention.forward(x, context), 1e-5, 1e-5, "cross-attention");
        Assert.Throws<ArgumentException>(() => attention.forward(x, randn(2, 7, 24)));
    }

    [Fact]
    public void SpatialSelfAttention_AppliesGroupNormResidualAndRescale()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(12);
        var attention = new Attention(queryDim: 16, crossAttentionDim: null, heads: 1, headDim: 16, bias: true, normNumGroups: 4, eps: 1e-6,
                                      residualConnection: true, rescaleOutputFactor: 2.0);
        var x = randn(2, 16, 3, 5);
        var tokens = nn.functional.group_norm(x, 4, attention.group_norm!.weight, attention.group_norm.bias, 1e-6).flatten(2).transpose(1, 2);
        var attended = Reference(attention, tokens, null).to(ScalarType.Float32).transpose(1, 2).reshape(2, 16, 3, 5);
        TensorAssert.Close(attended.Add(x).Div(2.0), attention.forward(x), 1e-5, 1e-5, "VAE-style attention");
    }

    [Fact]
    public void UpcastAttention_InBFloat16_AttendsInFloat32OnTheBFloat16Projections()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(13);
        var attention = new Attention(64, 32, heads: 2, headDim: 32, bias: false, upcastAttention: true, dtype: ScalarType.BFloat16);
        var x = randn(1, 300, 64).Mul(4).to(ScalarType.BFloat16);
        var context = randn(1, 77, 32).to(ScalarType.BFloat16);
        var output = attention.forward(x, context);
        Assert.Equal(ScalarType.BFloat16, output.dtype);

        Tensor Heads(Tensor t) => t.view(1, -1, 2, 32).transpose(1, 2).to(ScalarType.Float64);
        var q = Heads(attention.to_q.forward(x));
        var k = Heads(attention.to_k.forward(context));
        var v = Heads(attention.to_v.forward(context));
        var attended = q.matmul(k.transpose(-1, -2)).Div(Math.Sqrt(32)).softmax(-1).matmul(v);
        var expected = attention.to_out[0].forward(attended.transpose(1, 2).reshape(1, 300, 64).to(ScalarType.BFloat16));
        TensorAssert.Close(expected.to(ScalarType.Float32), output.to(ScalarType.Float32), 2e-2, 2e-2, "upcast bf16 attention");
    }

    sealed class ConstantAdapter(double value) : IProjectionAdapter
    {
        public int Calls;
        public Tensor Delta(Tensor input) { Calls++; return ones_like(input.narrow(-1, 0, 1)).Mul(value).expand(input.shape[0], input.shape[1], 8); }
    }

    [Fact]
    public void Adapters_DeltaIsScaledAndAddedToTheProjection_WithoutChangingKeys()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(14);
        var attention = new Attention(8, 6, heads: 2, headDim: 4, bias: false);
        var keys = attention.state_dict().Keys.ToList();
        var x = randn(1, 3, 8);
        var context = randn(1, 4, 6);
        var plain = attention.forward(x, context);
        var v = new ConstantAdapter(1.0);
        attention.Adapters = new AttentionAdapters { V = v, Scale = 0.5 };
        var adapted = attention.forward(x, context);
        Assert.Equal(1, v.Calls);
        Assert.Equal(keys, attention.state_dict().Keys.ToList());
        // softmax rows sum to 1, so +0.5 on every value entry adds to_out.0(0.5·1) to every output token.
        var shift = nn.functional.linear(KeptScalars.Full([1, 1, 8], 0.5), ((TorchSharp.Modules.Linear)attention.to_out[0]).weight);
        TensorAssert.Close(plain.Add(shift), adapted, 1e-5, 1e-5, "adapter on to_v");
    }
}
