"""Pixel-space diffusion (DDPM, Ho et al. 2020): the latent model's UNet and loop, with no autoencoder.

    x0 = the image in [-1, 1]        (64×64×3; the UNet's input and output are pixels)
    x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε       DDPM's linear β 1e-4 → 0.02, T = 1000 (configs/milestones/pixel.yaml)
    L = w(t) ‖ε − εθ(x_t, t, τθ(y))‖²

The images are decoded once into memory as uint8 (what `load_pixels` makes of a file, exactly), so a
step costs what the latent model's does: no decoding, no autoencoder.
"""

from __future__ import annotations

from pathlib import Path

from t2i.config import Config, require_family, validate
from t2i.data.pixels import PixelImages
from t2i.diffusion.train import train_denoiser


def train_pixel_diffusion(
    config: Config,
    data_dir: str | Path,
    out_dir: str | Path,
    cache_dir: str | Path | None = None,
    overfit_batch: bool = False,
) -> Path:
    """Train (or resume) a pixel-space DDPM; returns the model folder OUT/model. Caption embeddings are
    cached in `cache_dir` (None: OUT/cache; any run with the same text encoder may share it)."""
    validate(config)
    require_family(config, "pixel-diffusion")
    images = PixelImages(data_dir, config.data.image_size, config.data.split_fractions, config.data.flip)
    return train_denoiser(config, images, out_dir, cache_dir or Path(out_dir) / "cache", None, overfit_batch)
