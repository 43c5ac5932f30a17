#!/usr/bin/env bash
# The ImageFolderAugmentation example's job with the diffii command-line tool:
#   1. augment: Diff-II synthetic images for an image folder (one sub-folder per class), written with a manifest;
#   2. experiment: the same augmentation followed by the classifier comparison (baseline vs augmented).
#
#   examples/cli-augment.sh IMAGES [METACLASS] [MODEL] [OUT]
#
# MODEL defaults to models/tiny-sd in the repository, and METACLASS to "clothing item", the only thing that model
# knows. Diff-II's first denoising stage needs prompt suffixes: a metaclass with a preset (bird, car, aircraft,
# animal, flower, clothing item) picks that preset; for any other, pass them in DIFFII_ARGS, which both commands
# receive, e.g. DIFFII_ARGS="--suffix-file suffixes.txt --device cuda".
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
images="${1:?usage: $0 IMAGES [METACLASS] [MODEL] [OUT]}"
metaclass="${2:-clothing item}"
model="${3:-$repo/models/tiny-sd}"
out="${4:-diffii-out}"

if [[ ! -d "$images" ]]; then
  echo "No image folder at $images (expected one sub-folder of images per class)." >&2
  exit 2
fi
if [[ ! -f "$model/model_index.json" ]]; then
  echo "No Stable Diffusion folder at $model; pass the model folder as the third argument." >&2
  exit 2
fi

diffii() { dotnet run --project "$repo/src/DiffII.Cli" -c Release -- "$@"; }

# Build once, so the two runs below start at once.
dotnet build "$repo/src/DiffII.Cli" -c Release -v quiet

# shellcheck disable=SC2086  # DIFFII_ARGS is split into options on purpose
diffii augment --images "$images" --metaclass "$metaclass" --model "$model" --work "$out/augment" --expansion 5 ${DIFFII_ARGS:-}

# shellcheck disable=SC2086
diffii experiment --images "$images" --metaclass "$metaclass" --model "$model" --work "$out/experiment" --expansion 5 \
  --out "$out/experiment/model.zip" ${DIFFII_ARGS:-}

echo "Synthetic images and manifest: $out/augment; comparison report: $out/experiment/report/report.md"
