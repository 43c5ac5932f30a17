namespace DiffII.MLNet.FineTuning;

/// <summary>The optimizer of the fine-tuning run.</summary>
public enum FineTuneOptimizer
{
    /// <summary>AdamW (decoupled weight decay).</summary>
    AdamW,
    /// <summary>SGD with Nesterov-free momentum and L2 weight decay, as the paper's ResNet recipes use.</summary>
    Sgd,
}

/// <summary>The floating-point type the network trains in.</summary>
public enum FineTuneDType
{
    Float32,
    /// <summary>bfloat16 weights and activations; CUDA only (build with -p:TorchBackend=cuda).</summary>
    BFloat16,
}

/// <summary>Options of <see cref="ResNet18FineTuneTrainer"/>; defaults follow the paper's fine-tuning where a 2-core CPU allows.</summary>
public sealed class ResNet18FineTuneOptions
{
    /// <summary>The key-typed label column (MapValueToKey).</summary>
    public string LabelColumnName { get; set; } = "Label";
    /// <summary>The image column: an MLImage, a path (String) or encoded bytes (a variable-length Byte vector).</summary>
    public string ImageColumnName { get; set; } = "Image";
    /// <summary>The folder relative paths resolve against (path columns only).</summary>
    public string? ImageFolder { get; set; }

    /// <summary>Side of the square network input, 64–224 px (images are centre-cropped to a square and resized).</summary>
    public int ImageSize { get; set; } = 224;
    public int BatchSize { get; set; } = 32;
    public int Epochs { get; set; } = 10;
    public FineTuneOptimizer Optimizer { get; set; } = FineTuneOptimizer.AdamW;
    /// <summary>Peak learning rate, reached after the warm-up and then decayed along a cosine to zero.</summary>
    public double LearningRate { get; set; } = 1e-3;
    public double WeightDecay { get; set; } = 1e-4;
    /// <summary>SGD momentum (ignored by AdamW).</summary>
    public double Momentum { get; set; } = 0.9;
    /// <summary>The share of all optimizer steps spent warming the learning rate up linearly from lr/warm-up steps.</summary>
    public double WarmupFraction { get; set; } = 0.1;

    /// <summary>Random resized crop: the smallest share of the image area a crop keeps (torchvision: 0.08).</summary>
    public double CropScaleMin { get; set; } = 0.25;
    /// <summary>Random resized crop: aspect ratios drawn log-uniformly in [3/4, 4/3] as torchvision does.</summary>
    public bool RandomHorizontalFlip { get; set; } = true;

    /// <summary>Share of the originals held out for early stopping (0: no validation, train all epochs).</summary>
    public double ValidationFraction { get; set; }
    /// <summary>Epochs without a better validation accuracy before stopping; the best epoch's weights are kept.</summary>
    public int EarlyStoppingPatience { get; set; } = 3;

    /// <summary>Replacement mixing: the Boolean column marking synthetic rows (null or absent: ordinary fine-tuning on every row).</summary>
    public string? IsSyntheticColumnName { get; set; } = "IsSynthetic";
    /// <summary>Replacement mixing: the UInt32 column numbering synthetic images (rows of one image share it).</summary>
    public string? SyntheticGroupColumnName { get; set; } = "SyntheticGroup";
    /// <summary>The Single example-weight column (soft labels); null or absent means weight 1.</summary>
    public string? ExampleWeightColumnName { get; set; } = "SampleWeight";
    /// <summary>Probability that an original is replaced by a synthetic image of its class, drawn afresh every epoch.</summary>
    public double ReplacementProbability { get; set; } = 0.5;

    /// <summary>Seeds the new head, the crops, flips, shuffles, replacement draws and validation split.</summary>
    public int Seed { get; set; }
    /// <summary>"cpu", "cuda" or "cuda:N" (CUDA needs the CUDA backend). Scoring after Fit runs through ONNX Runtime on CPU.</summary>
    public string Device { get; set; } = "cpu";
    public FineTuneDType DType { get; set; } = FineTuneDType.Float32;

    /// <summary>Where a checkpoint is written after every epoch, and read from to resume; null: no checkpoints.</summary>
    public string? CheckpointDirectory { get; set; }
    /// <summary>The ResNet18.onnx holding the initial weights; null: the copy the package puts in the application folder.</summary>
    public string? InitialModelPath { get; set; }

    public IProgress<FineTuneProgress>? Progress { get; set; }
    public CancellationToken CancellationToken { get; set; }
}

/// <summary>Where a fine-tuning run is: reported after every optimizer step and every finished epoch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Step">Steps done in this epoch.</param>
/// <param name="ValidationAccuracy">Set on the report that ends an epoch when a validation split is used.</param>
public sealed record FineTuneProgress(int Epoch, int Epochs, int Step, int StepsInEpoch, double Loss, double LearningRate, double? ValidationAccuracy = null);
