"""`t2i demo`: the whole system end to end, from nothing to generated faces, in minutes on a laptop CPU.

synthetic captioned faces -> autoencoder -> latent cache -> text-conditioned diffusion -> images.
Every stage is the same library call the full-size commands make, with configs/quick.yaml (32x32 faces,
under 10 minutes on 2 CPU cores).
"""

from __future__ import annotations

import time
from pathlib import Path

from t2i.autoencoder.cache import cache_latents
from t2i.autoencoder.train import train_autoencoder
from t2i.config import Config, load_config
from t2i.data.synthetic import is_synthesized, synthesize_dataset
from t2i.diffusion.train import train_diffusion
from t2i.eval.autoencoder import evaluate_autoencoder
from t2i.generate import generate_images
from t2i.pipeline import SamplingSettings, Text2ImagePipeline

QUICK_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "quick.yaml"
PROMPTS = [  # hair colour is what a 10-minute model learns first
    "This woman has blond hair.",
    "This woman has black hair.",
    "The man has gray hair.",
    "He has brown hair and wears eyeglasses.",
]
EXPECT = (
    "What to expect at this scale: blurry 32x32 faces whose hair colour (and often glasses or a hat) follows the "
    "prompt. For sharper 64x64 faces that follow more of the prompt, generate with the committed demo model "
    "(`t2i generate`) or train configs/demo.yaml (README: Training; about 2.5 hours on 2 cores, minutes on a GPU)."
)


def run_demo(out_dir: str | Path, images: int = 2500, config: Config | None = None) -> dict:
    """Run every stage into out_dir; returns {stage: path of its result}."""
    out, start = Path(out_dir), time.perf_counter()
    config = config or load_config(QUICK_CONFIG)
    results = {}

    def done(stage: str, path: Path) -> None:
        results[stage] = path
        print(f"[{time.perf_counter() - start:6.0f} s] {stage}: {path}", flush=True)

    if is_synthesized(out / "data", images, config.data.image_size, seed=0):  # a re-run resumes, data kept
        done("data (kept from the last run)", out / "data")
    else:
        done("data", synthesize_dataset(out / "data", images, config.data.image_size, seed=0))
    done("autoencoder", train_autoencoder(config, out / "data", out / "autoencoder"))
    metrics = evaluate_autoencoder(results["autoencoder"], out / "data", "val", out / "autoencoder" / "eval")
    done(f"autoencoder eval (PSNR {metrics['psnr_db']:.1f} dB)", out / "autoencoder" / "eval")
    cache = cache_latents(
        results["autoencoder"],
        out / "data",
        out / "cache",
        config.data.flip,
        split_fractions=config.data.split_fractions,
    )
    done("latent cache", cache)
    done("diffusion model", train_diffusion(config, cache, results["autoencoder"], out / "diffusion"))
    done("training samples", out / "diffusion" / "samples")
    SamplingSettings(steps=10, guidance=5.0).save(results["diffusion model"])  # `t2i generate --model` uses them
    pipe = Text2ImagePipeline.from_pretrained(results["diffusion model"])
    prompts = [{"prompt": p, "negative_prompt": ""} for p in PROMPTS]
    generated = generate_images(pipe, prompts, out / "images", n=4)
    done("generated images (grid.png: a row per prompt)", generated[-1])
    minutes, seconds = divmod(round(time.perf_counter() - start), 60)
    print(f"demo done in {minutes} min {seconds} s.\n{EXPECT}")
    return results
