#!/usr/bin/env bash
# On a GPU machine: synthesize the demo dataset, pack it, then run `autoencoder_recipes.py train` for the
# recipes named on stdin (a line each: "NAME [--scale S]"), PARALLEL at a time, for at most BUDGET_S
# seconds; results as JSON lines in $OUT/results.jsonl (benchmarks/results/autoencoder_recipes_h100.jsonl).
#   printf '%s\n' demo ema "demo --scale 0.15" | bash benchmarks/autoencoder_recipes_gpu.sh
set -u
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:-}:$PWD"
nvidia-smi -L
python3 -c "from t2i.data.synthetic import synthesize_dataset as s; s('/tmp/faces', 20000, 64, 0, 16)" >/dev/null 2>&1
python3 benchmarks/autoencoder_recipes.py pack --data /tmp/faces --out /tmp/faces.safetensors
echo "data ready after ${SECONDS} s"
timeout "${BUDGET_S:-480}" xargs -P "${PARALLEL:-8}" -L 1 sh -c \
  'python3 benchmarks/autoencoder_recipes.py train --packed /tmp/faces.safetensors --recipe "$@" >>"$OUT/results.jsonl" 2>>"$OUT/log.txt"' sh
echo "done after ${SECONDS} s"
cat "$OUT/results.jsonl"
