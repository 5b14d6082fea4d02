#!/usr/bin/env bash
# Issue 33's measurements at the milestones budget (configs/milestones/): the VQ autoencoder (with dead-code
# restarts) against the discrete VAE (PSNR, SSIM, codebook usage and perplexity, the classifier on the
# reconstructions), then the priors over their tokens, each scored by `t2i eval alignment`: cross-attention on the
# VQ tokens (configs/milestones/vq.yaml) and the gated PixelCNN (configs/milestones/pixelcnn.yaml) in one lane;
# DALL-E's pair (dVAE + stream, configs/milestones/dalle.yaml), then the single stream on the VQ tokens
# (configs/experiments/vq-stream.yaml: the conditionings side by side) in the other. One thread each, niced; the
# VQ priors share one token and caption cache, built by the first (vq-cross starts an hour before vq-stream).
# Every step's wall time goes to OUT/times.txt. Usage: benchmarks/token_families.sh [OUT] (default runs/tokens).
# Re-running resumes (each command resumes from its checkpoints and caches).
set -euo pipefail
OUT=${1:-runs/tokens}
DATA=data/faces20k
T2I=${T2I:-t2i}
export HF_HUB_OFFLINE=1
mkdir -p "$OUT"
timed() {  # timed NAME COMMAND...: run it (one thread, niced), append "NAME SECONDS" to OUT/times.txt
  local name=$1 start=$SECONDS
  shift
  nice -n 10 "$T2I" --threads 1 "$@"
  echo "$name $((SECONDS - start))" >> "$OUT/times.txt"
}
autoencoder() {  # autoencoder NAME CONFIG: train it, then its figures on the validation split
  timed "$1-autoencoder" train autoencoder --config "$2" --data "$DATA" --out "$OUT/$1-ae"
  timed "$1-eval-autoencoder" eval autoencoder --model "$OUT/$1-ae/vae" --data "$DATA" \
    --classifier weights/classifier --out "$OUT/$1-ae-eval"
}
prior() {  # prior NAME CONFIG AUTOENCODER: train it on the autoencoder's tokens, score it, draw the grid
  timed "$1-prior" train prior --config "$2" --data "$DATA" --autoencoder "$OUT/$3-ae/vae" --out "$OUT/$1" \
    --cache "$OUT/$3-cache"
  timed "$1-eval" eval alignment --model "$OUT/$1/model" --data "$DATA" --out "$OUT/eval-$1"
  timed "$1-grid" generate --prompts-file docs/milestones/prompts.txt --n 4 --model "$OUT/$1/model" --out "$OUT/grid-$1"
}
[ -d "$DATA" ] || timed data data synth --out "$DATA" --n 20000 --size 64 --seed 0
(autoencoder vq configs/milestones/vq.yaml && prior vq-cross configs/milestones/vq.yaml vq &&
  prior pixelcnn configs/milestones/pixelcnn.yaml vq) &
(autoencoder dvae configs/milestones/dalle.yaml && prior dalle configs/milestones/dalle.yaml dvae &&
  prior vq-stream configs/experiments/vq-stream.yaml vq) &
wait
