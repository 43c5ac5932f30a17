using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;

namespace DiffII.MLNet.FineTuning;

/// <summary>
/// Turns an image column of any of ML.NET's three kinds (an <see cref="MLImage"/>, a path, encoded bytes) into the
/// network's input: a [3, S, S] float vector in B, G, R order with values 0–255, centre-cropped to a square and resized.
/// Training and scoring share this chain, so the fine-tuned network sees the same pixels in both.
/// </summary>
public static class ImageColumns
{
    // Fixed names: a custom mapping's column names are those of its classes and are not saved with the model.
    public const string EncodedColumn = "DiffIIFineTuneEncoded";
    public const string DecodedColumn = "DiffIIFineTuneDecoded";
    internal const string ResizedColumn = "DiffIIFineTuneResized";
    public const string PixelsColumn = "DiffIIFineTunePixels";
    internal const string PredictedIndexColumn = "DiffIIFineTunePredictedIndex";
    public const string DecodeBytesContract = "DiffII.FineTuning.DecodeImageBytes";
    public const string ArgMaxContract = "DiffII.FineTuning.ArgMax";

    internal static readonly string[] Reserved = [EncodedColumn, DecodedColumn, ResizedColumn, PixelsColumn, PredictedIndexColumn];

    public enum Kind { MLImage, Path, Bytes }

    /// <summary>The kind of <paramref name="name"/>, or an error that names the column, its type and what would fit.</summary>
    public static Kind Detect(DataViewSchema schema, string name)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(name),
                $"The image column '{name}' is not in the input. Columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"{c.Name} ({c.Type})"))}.");
        return column.Type switch
        {
            ImageDataViewType => Kind.MLImage,
            TextDataViewType => Kind.Path,
            VectorDataViewType v when v.ItemType == NumberDataViewType.Byte && v.Size == 0 => Kind.Bytes,
            _ => throw new ArgumentOutOfRangeException(nameof(name),
                $"The image column '{name}' has type {column.Type}; the ResNet-18 trainer needs an image (LoadImages), " +
                "a path (String, before LoadImages) or encoded bytes (LoadRawImageBytes: a variable-length Byte vector)."),
        };
    }

    /// <summary>The chain from <paramref name="imageColumn"/> to <see cref="PixelsColumn"/>, and the intermediate columns to drop.</summary>
    public static (IEstimator<ITransformer> Chain, string[] Intermediates) ToPixels(MLContext ml, DataViewSchema schema, string imageColumn, string? imageFolder, int imageSize)
    {
        var kind = Detect(schema, imageColumn);
        foreach (var reserved in Reserved)
            if (schema.GetColumnOrNull(reserved) is not null)
                throw new ArgumentException($"The input has a column '{reserved}', a name the ResNet-18 trainer uses internally; rename it.", nameof(schema));
        IEstimator<ITransformer> chain;
        string image;
        var intermediates = new List<string> { ResizedColumn, PixelsColumn };
        switch (kind)
        {
            case Kind.Path:
                chain = ml.Transforms.LoadImages(DecodedColumn, imageFolder ?? "", imageColumn);
                image = DecodedColumn;
                intermediates.Add(DecodedColumn);
                break;
            case Kind.Bytes:
                chain = DecodeBytes(ml, imageColumn);
                image = DecodedColumn;
                intermediates.Add(EncodedColumn);
                intermediates.Add(DecodedColumn);
                break;
            default:
                chain = new EstimatorChain<ITransformer>();
                image = imageColumn;
                break;
        }
        var pixels = chain
            .Append(ml.Transforms.ResizeImages(ResizedColumn, imageSize, imageSize, image, ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center))
            .Append(ml.Transforms.ExtractPixels(PixelsColumn, ResizedColumn, orderOfExtraction: ImagePixelExtractingEstimator.ColorsOrder.ABGR));
        return (pixels, intermediates.ToArray());
    }

    /// <summary>
    /// Decodes the encoded images of <paramref name="bytesColumn"/> (PNG, JPEG, BMP, ...) into the image column
    /// <see cref="DecodedColumn"/>, by way of <see cref="EncodedColumn"/>. A saved model that holds this chain loads
    /// only into an MLContext that has registered this assembly (<see cref="ResNet18FineTuning.Register"/>).
    /// </summary>
    public static IEstimator<ITransformer> DecodeBytes(MLContext ml, string bytesColumn) =>
        ml.Transforms.CopyColumns(EncodedColumn, bytesColumn)
            .Append(ml.Transforms.CustomMapping(new DecodeBytesFactory().GetMapping(), DecodeBytesContract));
}

/// <summary>The input of the byte-decoding mapping: encoded image bytes (PNG, JPEG, BMP, ...).</summary>
public sealed class EncodedImage
{
    [ColumnName(ImageColumns.EncodedColumn)]
    public VBuffer<byte> Bytes { get; set; }
}

/// <summary>The output of the byte-decoding mapping.</summary>
public sealed class DecodedImage
{
    [ColumnName(ImageColumns.DecodedColumn)]
    [UnsizedImage]
    public MLImage? Image { get; set; }
}

/// <summary>An <see cref="MLImage"/> member of unknown size (ML.NET's parameterless ImageType builds a 0×0 type, which is refused).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class UnsizedImageAttribute : DataViewTypeAttribute
{
    public override void Register() => DataViewTypeManager.Register(new ImageDataViewType(), typeof(MLImage), this);
    public override bool Equals(DataViewTypeAttribute other) => other is UnsizedImageAttribute;
    public override int GetHashCode() => typeof(UnsizedImageAttribute).GetHashCode();
}

/// <summary>Decodes encoded image bytes; registered so saved models that use it load again (see <see cref="ResNet18FineTuning.Register"/>).</summary>
[CustomMappingFactoryAttribute(ImageColumns.DecodeBytesContract)]
public sealed class DecodeBytesFactory : CustomMappingFactory<EncodedImage, DecodedImage>
{
    public override Action<EncodedImage, DecodedImage> GetMapping() => (input, output) =>
    {
        var bytes = input.Bytes.DenseValues().ToArray();
        if (bytes.Length == 0) throw new InvalidOperationException("An image bytes value is empty; every row needs an encoded image.");
        try { output.Image = MLImage.CreateFromStream(new MemoryStream(bytes, writable: false)); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        {
            throw new InvalidOperationException($"Image bytes ({bytes.Length} bytes, starting {Convert.ToHexString(bytes.AsSpan(0, Math.Min(8, bytes.Length)))}) cannot be decoded: {e.Message}", e);
        }
    };
}

/// <summary>The input of the arg-max mapping: the class probabilities.</summary>
public sealed class ScoreVector
{
    [ColumnName("Score")]
    public VBuffer<float> Score { get; set; }
}

/// <summary>The output of the arg-max mapping: the 0-based index of the most probable class.</summary>
public sealed class PredictedIndex
{
    [ColumnName(ImageColumns.PredictedIndexColumn)]
    public uint Index { get; set; }
}

/// <summary>The most probable class (the first on ties, like ML.NET's multiclass predictors).</summary>
[CustomMappingFactoryAttribute(ImageColumns.ArgMaxContract)]
public sealed class ArgMaxFactory : CustomMappingFactory<ScoreVector, PredictedIndex>
{
    public override Action<ScoreVector, PredictedIndex> GetMapping() => (input, output) =>
    {
        var values = input.Score.GetValues();
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        output.Index = (uint)best;
    };
}
