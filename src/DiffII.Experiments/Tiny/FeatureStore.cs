using System.Security.Cryptography;
using DiffII.Experiments.Classification;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace DiffII.Experiments.Tiny;

/// <summary>
/// ResNet18 features of image files, computed once per image content and kept on disk. The experiment featurises
/// the same test pictures for every method and seed, and a resumed run must not pay for them again.
/// </summary>
/// <remarks>
/// The store is an append-only file of records (32-byte SHA-256 of the file's bytes, then 512 little-endian
/// Singles). A record cut short by a killed process is dropped when the file is read back.
/// </remarks>
public sealed class FeatureStore
{
    const int HashBytes = 32;
    readonly string _path;
    readonly Dictionary<string, float[]> _features = new(StringComparer.Ordinal);
    readonly MLContext _ml = new(seed: 1);

    public FeatureStore(string path)
    {
        _path = Path.GetFullPath(path);
        Load();
    }

    public int Count => _features.Count;

    /// <summary>The features of each file, in order; files not seen before go through ResNet18 in one batch and are stored.</summary>
    public IReadOnlyList<float[]> Get(IReadOnlyList<string> paths, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        var keys = paths.Select(p => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(p)))).ToList();
        var missing = paths.Zip(keys).Where(p => !_features.ContainsKey(p.Second)).DistinctBy(p => p.Second).ToList();
        if (missing.Count > 0)
        {
            var input = _ml.Data.LoadFromEnumerable(missing.Select(m => new PathRow { ImagePath = m.First }).ToList());
            var featurizer = ImageFeaturizer.Create(_ml, input.Schema, new ImageFeaturizerOptions { ImageColumn = nameof(PathRow.ImagePath), CacheFeatures = false }).Fit(input);
            var output = featurizer.Transform(input);
            using var cursor = output.GetRowCursor([output.Schema[ImageFeaturizer.DefaultFeaturesColumn]]);
            var getter = cursor.GetGetter<VBuffer<float>>(output.Schema[ImageFeaturizer.DefaultFeaturesColumn]);
            using var file = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read);
            var buffer = default(VBuffer<float>);
            int done = 0;
            while (cursor.MoveNext())
            {
                cancellationToken.ThrowIfCancellationRequested();
                getter(ref buffer);
                var values = buffer.DenseValues().ToArray();
                string key = missing[done].Second;
                _features[key] = values;
                file.Write(Convert.FromHexString(key));
                var bytes = new byte[values.Length * sizeof(float)];
                Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
                if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("The feature store is written little-endian.");
                file.Write(bytes);
                done++;
                if (done % 32 == 0)
                {
                    file.Flush();
                    progress?.Report((done, missing.Count));
                }
            }
            file.Flush(flushToDisk: true);
            progress?.Report((done, missing.Count));
        }
        return keys.Select(k => _features[k]).ToList();
    }

    void Load()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        if (!File.Exists(_path)) return;
        int record = HashBytes + ImageFeaturizer.FeatureCount * sizeof(float);
        var bytes = File.ReadAllBytes(_path);
        int whole = bytes.Length / record;
        for (int r = 0; r < whole; r++)
        {
            int offset = r * record;
            var values = new float[ImageFeaturizer.FeatureCount];
            Buffer.BlockCopy(bytes, offset + HashBytes, values, 0, values.Length * sizeof(float));
            _features[Convert.ToHexString(bytes, offset, HashBytes)] = values;
        }
        if (whole * record != bytes.Length)
        {
            // A killed run left half a record: keep the whole ones.
            using var file = new FileStream(_path, FileMode.Open, FileAccess.Write);
            file.SetLength((long)whole * record);
        }
    }

    sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }
}
