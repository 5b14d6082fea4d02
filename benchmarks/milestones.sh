#!/usr/bin/env bash
# The milestones comparison (docs/milestones.md): each model family trained on the same 20,000 synthetic faces
# at about the same budget of training time on this machine, then scored by the same judge. Every step's wall
# time goes to OUT/times.txt (the token families' to OUT/tokens/times.txt). Usage: benchmarks/milestones.sh [OUT]
# (default runs/milestones). Re-running resumes: each command resumes from its checkpoints and caches.
set -euo pipefail
OUT=${1:-runs/milestones}
DATA=data/faces20k
T2I=${T2I:-t2i}
export HF_HUB_OFFLINE=1
mkdir -p "$OUT"
timed() {  # timed NAME COMMAND...: run it, append "NAME SECONDS" to OUT/times.txt
  local name=$1 start=$SECONDS
  shift
  "$@"
  echo "$name $((SECONDS - start))" >> "$OUT/times.txt"
}
[ -d "$DATA" ] || timed data "$T2I" data synth --out "$DATA" --n 20000 --size 64 --seed 0
# latent diffusion: autoencoder, then the UNet (its run also builds the shared latent and caption caches)
timed latent-autoencoder "$T2I" train autoencoder --config configs/milestones/latent.yaml --data "$DATA" --out "$OUT/latent-ae"
timed latent-unet "$T2I" train diffusion --config configs/milestones/latent.yaml --data "$DATA" \
  --autoencoder "$OUT/latent-ae/vae" --out "$OUT/latent" --cache "$OUT/cache"
timed pixel "$T2I" train pixel-diffusion --config configs/milestones/pixel.yaml --data "$DATA" --out "$OUT/pixel" --cache "$OUT/cache"
timed gan "$T2I" train gan --config configs/milestones/gan.yaml --data "$DATA" --out "$OUT/gan" --cache "$OUT/cache"
# low resolution + upsample: the base at 32×32, then the upsampler to 64×64, and the upsampler alone against bicubic
timed cascade-base "$T2I" train pixel-diffusion --config configs/milestones/cascade-base.yaml --data "$DATA" \
  --out "$OUT/cascade-base" --cache "$OUT/cache"
timed cascade "$T2I" train upsampler --config configs/milestones/cascade.yaml --data "$DATA" \
  --base "$OUT/cascade-base/model" --out "$OUT/cascade" --cache "$OUT/cache"
timed eval-upsampler "$T2I" eval upsampler --model "$OUT/cascade/model" --data "$DATA" \
  --classifier weights/classifier --out "$OUT/eval-upsampler"
# the token families (VQ + cross-attention or a single stream, DALL-E's dVAE + stream, VQ + PixelCNN): two lanes
T2I="$T2I" benchmarks/token_families.sh "$OUT/tokens"
# the same judge for each: alignment on the default suite (64 prompts, half held out, 4 images each), Fréchet
# distance on the classifier's features, and the same 8 prompts x 4 seeds; then the table (on a quiet machine)
for family in latent pixel cascade gan; do
  timed "eval-$family" "$T2I" eval alignment --model "$OUT/$family/model" --data "$DATA" --out "$OUT/eval-$family"
  timed "grid-$family" "$T2I" generate --prompts-file docs/milestones/prompts.txt --n 4 --model "$OUT/$family/model" \
    --out "$OUT/grid-$family"
done
python benchmarks/milestones_table.py "$OUT"
