#!/usr/bin/env bash
# Issue 33's measurements at the milestones budget (configs/milestones/): the VQ autoencoder against the discrete
# VAE (PSNR, SSIM, codebook usage and perplexity, the classifier on the reconstructions), then the priors over
# their tokens: the single stream on the VQ tokens (configs/experiments/vq-stream.yaml) beside cross-attention
# (configs/milestones/vq.yaml), DALL-E's pair (dVAE + stream, configs/milestones/dalle.yaml) and the gated PixelCNN
# (configs/milestones/pixelcnn.yaml), each scored by `t2i eval alignment`. Two lanes run side by side, one thread
# each, niced (the last two one after the other: they share the caption cache). Every step's wall time goes to OUT/times.txt. Usage: benchmarks/token_families.sh [OUT] (default
# runs/tokens). Re-running resumes (each command resumes from its checkpoints and caches).
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
prior() {  # prior NAME CONFIG AUTOENCODER: train it on the autoencoder's tokens, then score it
  timed "$1-prior" train prior --config "$2" --data "$DATA" --autoencoder "$OUT/$3-ae/vae" --out "$OUT/$1" \
    --cache "$OUT/$3-cache"
  timed "$1-eval" eval alignment --model "$OUT/$1/model" --data "$DATA" --out "$OUT/eval-$1"
}
[ -d "$DATA" ] || timed data data synth --out "$DATA" --n 20000 --size 64 --seed 0
(autoencoder vq configs/milestones/vq.yaml && prior vq-stream configs/experiments/vq-stream.yaml vq) &
(autoencoder dvae configs/milestones/dalle.yaml && prior dalle configs/milestones/dalle.yaml dvae) &
wait
prior vq-cross configs/milestones/vq.yaml vq  # these two read the caption cache: the first one builds it
prior pixelcnn configs/milestones/pixelcnn.yaml vq
