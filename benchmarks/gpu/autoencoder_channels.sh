#!/usr/bin/env bash
# Issue 35 on one lent GPU, in one call: five autoencoders side by side (latent channels 4, 8 and 16; 16 with a
# PatchGAN finish; 16 at a quarter of the length), then the demo's UNet recipe on the 8- and 16-channel ones side by
# side. Each length is set from a rate measured by a short probe of the same runs side by side (fit_steps.py).
# Everything comes back under $OUT: models.tar.gz.part-* (both UNet models as t2i-fp16 folders, the other three
# autoencoders in float16, every run's config, log and grids) and log.txt.
#   device: source .gpu-bundle/env.sh && bash benchmarks/gpu/autoencoder_channels.sh
#   tried here first, tiny: OUT=/tmp/o W=/tmp/w N=400 AE_SECONDS=20 SD_SECONDS=20 PROBE_AE=5 PROBE_SD=3 BATCH=8 bash benchmarks/gpu/autoencoder_channels.sh
set -uo pipefail
OUT=${OUT:-/tmp/out} W=${W:-/tmp/w} N=${N:-20000} AE_SECONDS=${AE_SECONDS:-140} SD_SECONDS=${SD_SECONDS:-190}
PROBE_AE=${PROBE_AE:-150} PROBE_SD=${PROBE_SD:-40} BATCH=${BATCH:-}  # BATCH: both stages' batch (a CPU trial)
T2I="python3 -m t2i.cli" FIT="python3 benchmarks/gpu/fit_steps.py"
mkdir -p "$OUT" "$W"
log() { echo "[$(date +%T) +${SECONDS}s] $*" | tee -a "$OUT/log.txt"; }
base() { echo "configs/experiments/gpu-$(echo "$1" | grep -o '^c[0-9]*').yaml"; }  # c16gan -> gpu-c16.yaml
last_step() { ls "$1/checkpoints" 2>/dev/null | grep -o '^step-[0-9]*$' | sort -V | tail -1 | sed 's/step-0*//'; }
# train STAGE NAME CONFIG ARGS...: one run, bounded; a run stopped by its bound ends at its last checkpoint
train() {
    local stage=$1 name=$2 config=$3; shift 3
    timeout -s INT "$BOUND" $T2I train "$stage" --config "$config" --out "$W/$name" "$@" > "$W/$name.log" 2>&1
    local rc=$? step
    if [ $rc -ne 0 ] && step=$(last_step "$W/$name") && [ -n "$step" ]; then
        log "$name: rc $rc, finishing at its checkpoint step $step"
        $FIT "$config" --section "${stage}_training" --steps "$step" --out "$W/$name.final.yaml"
        $T2I train "$stage" --config "$W/$name.final.yaml" --out "$W/$name" "$@" >> "$W/$name.log" 2>&1
    fi
    log "$name: $(grep -o 'img_s=[0-9.]*' "$W/$name.log" | tail -1) $(tail -c 300 "$W/$name.log" | tr '\r\n' '  ' | tail -c 160)"
}

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$OUT/log.txt"
timeout 150 $T2I data synth --out "$W/data" --n "$N" --size 64 --seed 0 > "$W/synth.log" 2>&1 || { log "synth failed"; tail -5 "$W/synth.log"; exit 1; }
log "synthesized $N faces"

# 1. autoencoders
AE="c4 c8 c16 c16gan c16short"
BOUND=120; export BOUND
for r in $AE; do
    $FIT "$(base $r)" --section autoencoder_training --steps "$PROBE_AE" ${BATCH:+--batch-size $BATCH} --out "$W/probe-$r.yaml" > /dev/null
    train autoencoder "probe-ae-$r" "$W/probe-$r.yaml" --data "$W/data" &
done; wait
for r in $AE; do
    seconds=$AE_SECONDS; extra=()
    case $r in c16gan) seconds=$((AE_SECONDS * 9 / 10)); extra=(--disc-from 0.75);; c16short) seconds=$((AE_SECONDS / 4));; esac
    $FIT "$(base $r)" --section autoencoder_training --log "$W/probe-ae-$r.log" --seconds "$seconds" "${extra[@]}" ${BATCH:+--batch-size $BATCH} \
        --out "$W/ae-$r.yaml" | tee -a "$OUT/log.txt"
done
BOUND=$((AE_SECONDS + 60)); export BOUND
for r in $AE; do train autoencoder "ae-$r" "$W/ae-$r.yaml" --data "$W/data" & done; wait

# 2. the UNet on the 8- and 16-channel latents (caches built by the probe, reused by the run)
SD="c8 c16"
BOUND=150; export BOUND
for c in $SD; do
    $FIT "$(base $c)" --section diffusion_training --steps "$PROBE_SD" ${BATCH:+--batch-size $BATCH} --out "$W/probe-sd-$c.yaml" > /dev/null
    train diffusion "probe-sd-$c" "$W/probe-sd-$c.yaml" --data "$W/data" --autoencoder "$W/ae-$c/vae" --cache "$W/cache-$c" &
done; wait
for c in $SD; do
    $FIT "$(base $c)" --section diffusion_training --log "$W/probe-sd-$c.log" --seconds "$SD_SECONDS" ${BATCH:+--batch-size $BATCH} \
        --out "$W/sd-$c.yaml" | tee -a "$OUT/log.txt"
done
BOUND=$((SD_SECONDS + 60)); export BOUND
for c in $SD; do
    train diffusion "sd-$c" "$W/sd-$c.yaml" --data "$W/data" --autoencoder "$W/ae-$c/vae" --cache "$W/cache-$c" &
done; wait

# 3. what comes back: the UNet models in float16, the other autoencoders in float16, configs, logs, grids
B=$W/back; mkdir -p "$B"
for c in $SD; do $T2I export "$B/model-$c" --model "$W/sd-$c/model" --format t2i-fp16 >> "$W/export.log" 2>&1 || log "export $c failed"; done
for r in c4 c16gan c16short; do
    [ -d "$W/ae-$r/vae" ] && python3 -c "
import shutil, sys; from safetensors.torch import load_file, save_file
src, dst = sys.argv[1:]; shutil.copytree(src, dst)
f = dst + '/diffusion_pytorch_model.safetensors'; save_file({k: v.half() for k, v in load_file(f).items()}, f)" "$W/ae-$r/vae" "$B/vae-$r"
done
for run in $AE; do mkdir -p "$B/runs/ae-$run" && cp -r "$W/ae-$run/samples" "$W/ae-$run/config.yaml" "$B/runs/ae-$run/" 2>/dev/null; done
for c in $SD; do mkdir -p "$B/runs/sd-$c" && cp -r "$W/sd-$c/samples" "$W/sd-$c/config.yaml" "$B/runs/sd-$c/" 2>/dev/null; done
cp "$W"/*.log "$B/runs/" 2>/dev/null
tar -C "$B" -czf - . | split -b 15M - "$OUT/models.tar.gz.part-"
log "done: $(du -sh "$B" | cut -f1) -> $(ls "$OUT" | tr '\n' ' ')"
