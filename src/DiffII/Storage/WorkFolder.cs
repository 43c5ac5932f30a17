using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace DiffII.Storage;

/// <summary>
/// A run's work folder: its layout (concepts/, inversions/, synthetic/, manifest.jsonl), the fingerprint of what
/// its caches were made from (fit.json: the images and model, then each stage's options), and its lock. A stage's
/// cache is reused only under the same inputs; a folder made from other images, another model or other options is
/// refused rather than silently mixed.
/// </summary>
internal sealed class WorkFolder : IDisposable
{
    public const string ConceptsFolderName = "concepts";
    public const string InversionsFolderName = "inversions";
    public const string SyntheticFolderName = "synthetic";
    public const string ManifestFileName = "manifest.jsonl";
    const string FingerprintFileName = "fit.json";

    readonly WorkFolderLock _lock;
    readonly bool _ownsLock;
    Fingerprint? _fingerprint;

    /// <param name="heldLock">The folder's lock when the caller already holds it; otherwise it is taken here and released on dispose.</param>
    public WorkFolder(string folder, WorkFolderLock? heldLock)
    {
        Root = Path.GetFullPath(folder);
        if (heldLock is not null && heldLock.Folder.TrimEnd(Path.DirectorySeparatorChar) != Root.TrimEnd(Path.DirectorySeparatorChar))
            throw new ArgumentException($"The lock given is for {heldLock.Folder}, not for the work folder {Root}.", nameof(heldLock));
        _lock = heldLock ?? WorkFolderLock.Acquire(Root);
        _ownsLock = heldLock is null;
    }

    /// <summary>The folder (a full path).</summary>
    public string Root { get; }
    public string ConceptsFolder => Path.Combine(Root, ConceptsFolderName);
    public string InversionsFolder => Path.Combine(Root, InversionsFolderName);
    public string ManifestPath => Path.Combine(Root, ManifestFileName);
    string FingerprintPath => Path.Combine(Root, FingerprintFileName);

    /// <summary>A synthetic image's path relative to the folder, as the manifest records it (always with '/').</summary>
    public static string SyntheticFile(int classIndex, string className, string sampleId) =>
        $"{SyntheticFolderName}/{SafeFolderName(classIndex, className)}/{sampleId}.png";

    /// <summary>A file-system-safe, collision-free folder name: the class index plus the name's safe characters.</summary>
    internal static string SafeFolderName(int classIndex, string name)
    {
        var safe = new string(name.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_').ToArray());
        if (safe.Length > 60) safe = safe[..60];
        return $"{classIndex:D4}-{safe}";
    }

    /// <summary>The images' key: every id and label with the SHA-256 of its bytes, in id order.</summary>
    public static string ImagesKey(IEnumerable<(string Id, string Label, byte[] ContentHash)> images)
    {
        using var hash = SHA256.Create();
        foreach (var (id, label, content) in images.OrderBy(i => i.Id, StringComparer.Ordinal))
        {
            var name = Encoding.UTF8.GetBytes(id + "\n" + label + "\n");
            hash.TransformBlock(name, 0, name.Length, null, 0);
            hash.TransformBlock(content, 0, content.Length, null, 0);
        }
        hash.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(hash.Hash!);
    }

    /// <summary>
    /// The model's key: its U-Net config and a fingerprint of its weight files (each file's path inside the model,
    /// length, and first and last MiB), not where it lies. The same model moved or copied (a new CLI folder, another
    /// cache) keeps its runs; a model retrained in place does not. Reads 2 MiB per file, whatever the model's size.
    /// </summary>
    public static string ModelKey(string source, string unetConfigJson)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(unetConfigJson));
        var files = File.Exists(source)
            ? [(Name: Path.GetFileName(source), Path: source)]
            : Directory.Exists(source)
                ? Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories)
                    .Where(f => WeightExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                    .Select(f => (Name: Path.GetRelativePath(source, f).Replace('\\', '/'), Path: f))
                    .OrderBy(f => f.Name, StringComparer.Ordinal).ToArray()
                : [];
        var buffer = new byte[1 << 20];
        foreach (var (name, path) in files)
        {
            using var stream = File.OpenRead(path);
            hash.AppendData(Encoding.UTF8.GetBytes($"\n{name}\n{stream.Length}\n"));
            hash.AppendData(buffer, 0, stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false));
            if (stream.Length > buffer.Length)
            {
                stream.Seek(Math.Max(buffer.Length, stream.Length - buffer.Length), SeekOrigin.Begin);
                hash.AppendData(buffer, 0, stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false));
            }
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    static readonly string[] WeightExtensions = [".safetensors", ".bin", ".ckpt", ".pt", ".pth"];

    /// <summary>The concept stage's key: everything the learned concepts depend on.</summary>
    public static string ConceptsKey(AugmentationOptions options, int resolution) =>
        JsonSerializer.Serialize(new { options.Metaclass, Concepts = options.ConceptOptions, Resolution = resolution, options.PretrainedConceptsFolder });

    /// <summary>The inversion stage's key: the concepts' key and the inversion options.</summary>
    public static string InversionKey(AugmentationOptions options, int resolution) =>
        JsonSerializer.Serialize(new { Concepts = ConceptsKey(options, resolution), options.Inversion });

    /// <summary>Refuses a folder made from other images or another model; records these on a fresh folder.</summary>
    public void CheckRun(string imagesKey, string modelKey)
    {
        var previous = JsonFile.Read<Fingerprint>(FingerprintPath);
        if (previous is not null && (previous.Images != imagesKey || previous.Model != modelKey))
        {
            string what = previous.Images != imagesKey ? "different images" : "a different model";
            throw new InvalidOperationException($"The work folder {Root} holds a run made with {what}. Use a new work folder (or delete this one) to start over.");
        }
        _fingerprint = previous ?? new Fingerprint(imagesKey, modelKey);
        Save();
    }

    /// <summary>Refuses the concepts cache made under other options; otherwise records this stage's key.</summary>
    public void CheckConcepts(string key)
    {
        var f = Current;
        Check("concepts", f.Concepts, key);
        _fingerprint = f with { Concepts = key };
        Save();
    }

    /// <summary>Refuses the inversion cache made under other options; otherwise records this stage's key.</summary>
    public void CheckInversions(string key)
    {
        var f = Current;
        Check("inversions", f.Inversion, key);
        _fingerprint = f with { Inversion = key };
        Save();
    }

    /// <summary>Removes temporary files an interrupted write left behind.</summary>
    public void CleanUp() => AtomicFile.CleanUp(Root);

    Fingerprint Current => _fingerprint ?? throw new InvalidOperationException("The images were not checked yet (CheckRun).");

    void Check(string stage, string? recorded, string current)
    {
        if (recorded is not null && recorded != current)
            throw new InvalidOperationException($"The work folder {Root} holds {stage} made with different options. Use a new work folder (or delete this one) to start over.");
    }

    void Save()
    {
        Directory.CreateDirectory(Root);
        AtomicFile.WriteAllText(FingerprintPath, JsonSerializer.Serialize(_fingerprint));
    }

    public void Dispose()
    {
        if (_ownsLock) _lock.Dispose();
    }

    /// <summary>What fit.json holds; the property names are the file's keys.</summary>
    sealed record Fingerprint(string Images, string Model, string? Concepts = null, string? Inversion = null);
}
