using System.Diagnostics;
using System.Text.Json;
using DiffII.Augmentation;
using DiffII.Concepts;
using DiffII.Diffusion.Pipelines;
using DiffII.Inversion;
using DiffII.Experiments.Classification;
using DiffII.Storage;
using DiffII.TinyWorld;
using Microsoft.ML;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace DiffII.Experiments.Tiny;

public sealed partial class TinyExperiment
{
    /// <summary>L-BFGS on plenty of real pictures in every context: the judge of whether a synthetic image shows its class.</summary>
    internal sealed class ReferenceClassifier
    {
        readonly MLContext _ml = new(seed: 1);
        readonly ITransformer _model;
        public ReferenceResult Result { get; }

        ReferenceClassifier(ITransformer model, ReferenceResult result) { _model = model; Result = result; }

        public static ReferenceClassifier Train(IReadOnlyList<string> labels, IReadOnlyList<float[]> features,
            Dictionary<string, IReadOnlyList<WorldImage>> testSets, Dictionary<string, IReadOnlyList<float[]>> testFeatures)
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(labels.Select((l, i) => new FeatureRow { Label = l, Features = features[i] }).ToList(), FeatureRow.Schema(ml));
            var trainer = ClassifierTrainer.LbfgsMaximumEntropy();
            var pipeline = ml.Transforms.Conversion.MapValueToKey("LabelKey", nameof(FeatureRow.Label))
                .Append(trainer.Create(ml, new TrainerColumns("LabelKey", nameof(FeatureRow.Features), null)))
                .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
            var model = pipeline.Fit(ml.Data.Cache(data));
            var accuracy = new List<AccuracyResult>();
            foreach (var (name, images) in testSets)
            {
                var test = ml.Data.LoadFromEnumerable(images.Select((im, i) => new FeatureRow { Label = im.ClassName, Features = testFeatures[name][i] }).ToList(), FeatureRow.Schema(ml));
                var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test), "LabelKey");
                accuracy.Add(new AccuracyResult("lbfgs", name, metrics.MicroAccuracy, metrics.MacroAccuracy));
            }
            return new ReferenceClassifier(model, new ReferenceResult(labels.Count / FewShotWorld.Classes.Count, accuracy));
        }

        /// <summary>The share of <paramref name="features"/> predicted as <paramref name="intended"/>.</summary>
        public double Agreement(IReadOnlyList<string> intended, IReadOnlyList<float[]> features)
        {
            var data = _ml.Data.LoadFromEnumerable(intended.Select((l, i) => new FeatureRow { Label = l, Features = features[i] }).ToList(), FeatureRow.Schema(_ml));
            var predicted = _ml.Data.CreateEnumerable<Prediction>(_model.Transform(data), reuseRowObject: false).ToList();
            int agree = predicted.Where((p, i) => p.PredictedLabel == intended[i]).Count();
            return (double)agree / intended.Count;
        }

        sealed class Prediction
        {
            public string PredictedLabel { get; set; } = "";
        }
    }
}
