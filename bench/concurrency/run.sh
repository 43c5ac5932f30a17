#!/usr/bin/env bash
# Two diffii runs at once vs one alone, under the thread policy (src/DiffII.Diffusion/Runtime/ThreadPolicy.cs).
# Each run: the sd-tiny-a golden model, 4 images in 2 classes, 8 concept-learning steps, 8 inversion and
# 8 sampling steps, expansion 8. Prints one CSV line per run: case,run,wait,seconds.
#
#   bench/concurrency/run.sh CLI_DLL MODEL OUT_CSV [REPEATS]
# SPINNING=0 leaves out the pair with spinning OpenMP threads (it takes tens of times longer).
set -euo pipefail
dll="${1:?CLI dll}"; model="${2:?model folder}"; out="${3:?csv}"; repeats="${4:-2}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 - "$scratch/img" <<'PY'
import os, struct, sys, zlib
def png(w, h, c):
    raw = b''.join(b'\x00' + bytes(c) * w for _ in range(h))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
for cls, c in (('a', (200, 30, 30)), ('b', (30, 30, 200))):
    os.makedirs(os.path.join(sys.argv[1], cls), exist_ok=True)
    for k in range(2):
        open(os.path.join(sys.argv[1], cls, f'{k}.png'), 'wb').write(png(16, 16, (c[0], c[1] + 60 * k, c[2])))
PY
args=(--images "$scratch/img" --model "$model" --metaclass bird --suffix-preset cub-5shot --learn-steps 8 --lora-rank 2 --batch 2
      --inversion-steps 8 --sample-steps 8 --expansion 8 --quiet)
one() { # name work env...
  local name=$1 work=$2; shift 2
  local start end
  start=$(date +%s.%N)
  env -u OMP_NUM_THREADS -u DIFFII_THREADS "$@" dotnet "$dll" augment --work "$work" "${args[@]}" >/dev/null 2>"$work.err" || { grep -v NNPACK "$work.err" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$name,$(basename "$work"),${DIFFII_THREADS_SHOWN:-policy},$(echo "$end - $start" | bc)"
}
echo "case,run,wait,seconds" > "$out"
for r in $(seq 1 "$repeats"); do
  one alone "$scratch/alone-$r" >> "$out"
  one pair "$scratch/pair-a-$r" >> "$out" & one pair "$scratch/pair-b-$r" >> "$out" & wait
  [ "${SPINNING:-1}" = 0 ] && continue
  DIFFII_THREADS_SHOWN=spinning one pair-spinning "$scratch/spin-a-$r" OMP_WAIT_POLICY=ACTIVE >> "$out" &
  DIFFII_THREADS_SHOWN=spinning one pair-spinning "$scratch/spin-b-$r" OMP_WAIT_POLICY=ACTIVE >> "$out" & wait
done
cat "$out"
