"""The milestones table (docs/milestones.md) from a finished `benchmarks/milestones.sh` run: for each family,
parameters, training wall time (OUT/times.txt), sampling time per image at the model's defaults (measured here,
median of 3 batches of 8), alignment (seen and held-out), Fréchet distance and the references.

    python benchmarks/milestones_table.py [OUT]      (default runs/milestones; run it on a quiet machine)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from t2i.families import load_pipeline, trained_parameters

FAMILIES = {  # run folder under OUT -> (name in the table, the stages of its training in the times files)
    "gan": ("GAN-CLS", ["gan"]),
    "tokens/vq-cross": ("VQ tokens + transformer, cross-attention", ["tokens/vq-autoencoder", "tokens/vq-cross-prior"]),
    "tokens/vq-stream": ("VQ tokens + transformer, one stream", ["tokens/vq-autoencoder", "tokens/vq-stream-prior"]),
    "tokens/dalle": ("DALL-E: discrete VAE + one stream", ["tokens/dvae-autoencoder", "tokens/dalle-prior"]),
    "tokens/pixelcnn": ("VQ-VAE: VQ tokens + gated PixelCNN", ["tokens/vq-autoencoder", "tokens/pixelcnn-prior"]),
    "pixel": ("pixel-space DDPM", ["pixel"]),
    "cascade": ("cascade: pixel DDPM 32×32 + upsampler", ["cascade-base", "cascade"]),
    "latent": ("latent diffusion", ["latent-autoencoder", "latent-unet"]),
}
PROMPTS = [line for line in Path("docs/milestones/prompts.txt").read_text().splitlines() if line]


def seconds_per_image(pipe) -> float:
    pipe(PROMPTS[:1])  # warm-up
    runs = []
    for seed in range(3):
        start = time.perf_counter()
        pipe(PROMPTS, seed=seed)
        runs.append((time.perf_counter() - start) / len(PROMPTS))
    return statistics.median(runs)


def eval_file(out: Path, folder: str) -> Path:
    """Where `t2i eval alignment` wrote a run's scores: eval-RUN beside the run folder."""
    return (out / folder).parent / f"eval-{Path(folder).name}" / "alignment.json"


def main(out: Path) -> None:
    times = {}  # stage -> seconds; the token families' (benchmarks/token_families.sh) as tokens/STAGE
    for prefix, path in (("", out / "times.txt"), ("tokens/", out / "tokens" / "times.txt")):
        if path.is_file():
            times |= {prefix + stage: seconds for stage, seconds in map(str.split, path.read_text().splitlines())}
    print("| family | trained parameters | training (wall, s) | s / image | alignment | seen | held-out | Fréchet |")
    print("|---|---|---|---|---|---|---|---|")
    for folder, (name, stages) in FAMILIES.items():
        if not (out / folder / "model").is_dir():
            continue
        pipe = load_pipeline(out / folder / "model")
        result = json.loads(eval_file(out, folder).read_text())
        trained = " + ".join(times.get(stage, "?") for stage in stages)
        print(f"| {name} | {trained_parameters(pipe) / 1e6:.2f}M | {trained} | {seconds_per_image(pipe):.3f} | "
              f"{100 * result['alignment']:.1f}% | {100 * result['seen']:.1f}% | {100 * result['held_out']:.1f}% | "
              f"{result['frechet_distance']:.1f} |")  # fmt: skip
        references = result["references"]
    print(f"\nreal test images: {100 * references['real_test']['alignment']:.1f}%; real train vs test Fréchet: "
          f"{next(iter(references['frechet_real_train_vs_test'].values())):.1f}")  # fmt: skip
    for folder in FAMILIES:
        path = eval_file(out, folder)
        if path.is_file():
            refs = json.loads(path.read_text())["references"]
            through = refs.get("real_through_autoencoder")
            floor = refs["empty_prompt"]["alignment"]
            ceiling = f", real through its autoencoder {100 * through['alignment']:.1f}%" if through else ""
            print(f"{folder}: empty-prompt floor {100 * floor:.1f}%{ceiling}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/milestones"))
