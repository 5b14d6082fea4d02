"""`t2i demo`: the whole system end to end at the tiny scale, in minutes on a laptop CPU.

synthetic captioned faces -> autoencoder -> latent cache -> text-conditioned diffusion -> images.
Every stage is the same library call the full-size commands make, with configs/tiny.yaml.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from t2i.autoencoder.cache import cache_latents
from t2i.autoencoder.evaluate import evaluate_autoencoder
from t2i.autoencoder.train import train_autoencoder
from t2i.config import load_config
from t2i.data.synthetic import synthesize_dataset
from t2i.diffusion.train import train_diffusion
from t2i.generate import generate_images
from t2i.pipeline import Text2ImagePipeline

TINY_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "tiny.yaml"
PROMPTS = [
    {"prompt": "He wears eyeglasses and has black hair.", "negative_prompt": ""},
    {"prompt": "This woman has blond hair and is wearing a hat.", "negative_prompt": ""},
]


def run_demo(out_dir: str | Path, images: int = 600, ae_steps: int = 300, diffusion_steps: int = 400) -> dict:
    """Run every stage into out_dir; returns {stage: path of its result}."""
    out, start = Path(out_dir), time.perf_counter()
    config = load_config(TINY_CONFIG)
    config.autoencoder_training = dataclasses.replace(
        config.autoencoder_training, steps=ae_steps, sample_every=100, checkpoint_every=100, disc_start=ae_steps // 2
    )
    config.diffusion_training = dataclasses.replace(
        config.diffusion_training, steps=diffusion_steps, sample_every=200, checkpoint_every=200
    )
    results = {}

    def done(stage: str, path: Path) -> None:
        results[stage] = path
        print(f"[{time.perf_counter() - start:6.0f} s] {stage}: {path}", flush=True)

    done("data", synthesize_dataset(out / "data", images, config.data.image_size, seed=0))
    done("autoencoder", train_autoencoder(config, out / "data", out / "autoencoder"))
    metrics = evaluate_autoencoder(results["autoencoder"], out / "data", "val", out / "autoencoder" / "eval")
    done(f"autoencoder eval (PSNR {metrics['psnr_db']:.1f} dB)", out / "autoencoder" / "eval")
    done("latent cache", cache_latents(results["autoencoder"], out / "data", out / "cache"))
    done("diffusion model", train_diffusion(config, out / "cache", results["autoencoder"], out / "diffusion"))
    done("training samples", out / "diffusion" / "samples")
    pipe = Text2ImagePipeline.from_pretrained(results["diffusion model"])
    generated = generate_images(pipe, PROMPTS, out / "images", n=4)
    done("generated images", generated[-1].parent)
    return results
