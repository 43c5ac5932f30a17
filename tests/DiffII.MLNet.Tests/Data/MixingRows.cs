namespace DiffII.MLNet.Tests.Data;

/// <summary>A row of augmented data as the replacement views read it: label, synthetic flag, image number, weight, and an id to follow it by.</summary>
internal sealed class MixingRow
{
    public string Label { get; set; } = "";
    public bool IsSynthetic { get; set; }
    public uint SyntheticGroup { get; set; }
    public float SampleWeight { get; set; } = 1f;
    public float Id { get; set; }
}

/// <summary>The same without image numbers and weights: every synthetic row an image of its own, of weight 1.</summary>
internal sealed class HardMixingRow
{
    public string Label { get; set; } = "";
    public bool IsSynthetic { get; set; }
    public float Id { get; set; }
}
