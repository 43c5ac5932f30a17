namespace DiffII.Bench;

/// <summary>
/// The optimisations users need, and where the library does each. Each one with a measured ratio in the report is
/// named the same as its row in the optimisation table; the code paths are covered by tests that fail without them
/// (e.g. the text-encoder row counts in the StableDiffusion and method-parts tests).
/// </summary>
public static class OptimisationChecks
{
    public static readonly IReadOnlyList<OptimisationCheck> All =
    [
        new("batched generation (batched-guided-step)", true, "DiffIIAugmenter.Generate: fixed batches of GenerationOptions.BatchSize (8) samples per U-Net call"),
        new("batched inversion (batched-inversion-step)", true, "InversionPool.Build: InversionOptions.BatchSize (8) images of a class per Sampling.DdimInvert call"),
        new("CFG as one doubled batch (cfg-doubled-batch)", true, "Sampling.Ddim / DdimInvert: cat([x, x]) with cat([unconditional, conditional]) in one U-Net call"),
        new("LoRA merged for inference (lora-merged)", true, "DiffIIAugmenter.EnsureConcepts → LearnedConcepts.ApplyTo(sd, mergeLora: true) → UNetLora.Merge"),
        new("half precision on GPU", true, "StableDiffusionLoadOptions.DType / every model constructor takes device and dtype; attention upcasts only when the config asks (upcast_attention)"),
        new("1×1 transformer projections as one matmul (pointwise-conv-as-matmul)", true, "Transformer2DModel: proj_in/proj_out are PointwiseConv2d on tokens, not nn.Conv2d on the feature map (added in this issue, after the profile)"),
        new("SDPA (sdpa)", true, "Attention.forward and ClipAttention.forward call nn.functional.scaled_dot_product_attention"),
        new("latents cached for concept learning (cached-latents)", true, "ConceptLearner.EncodeViews: every image and its mirror VAE-encoded once (mean, std); each step samples from them"),
        new("each prompt encoded once per batch (prompt-dedup)", true, "StableDiffusion.EncodePrompts encodes distinct prompts only; TwoStageDenoiser encodes plain, suffixed and empty prompts in one call; ConceptLearner runs the text encoder once per class in the batch (added in this issue)"),
    ];
}
