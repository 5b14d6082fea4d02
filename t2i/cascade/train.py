"""The cascade's second stage: a text-conditioned diffusion upsampler (SR3, Imagen; diffusers' x4 upscaler).

    x0 = the image (data.image_size)       x_lr = x0 averaged down to upsampler.low_resolution
    c = √ᾱ_s up(x_lr) + √(1−ᾱ_s) ε'        up: bicubic; s ~ U{0..max_noise_level} (noise-conditioning augmentation)
    x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε
    L = w(t) ‖ε − εθ([x_t ; c], t, s, τθ(y))‖²

Noising the condition teaches the upsampler not to trust the low-resolution image's every pixel: at sampling it
reads the base model's images, which are not real ones. The base model is a pixel-diffusion folder trained at
upsampler.low_resolution (`t2i train pixel-diffusion`); the cascade folder is the upsampler's, with the base in
base/. Every draw of a step (rows, captions, s, ε', ε, t) comes from the step's generator: resume is exact.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from t2i.cascade.pipeline import bicubic, upsample, upsampling_condition
from t2i.cascade.settings import CascadeSettings
from t2i.config import Config, require_family, validate
from t2i.data.pixels import PixelImages
from t2i.diffusion.train import DenoiserTask
from t2i.diffusion.unet import build_unet
from t2i.families import model_family
from t2i.grid import make_grid, to_pil
from t2i.pipeline import Text2ImagePipeline
from t2i.training.batches import held_out_rows
from t2i.training.loop import start_run, train
from t2i.yaml_file import read_config_yaml


def low_resolution(x0: torch.Tensor, size: int) -> torch.Tensor:
    """x_lr: the image averaged down to size × size (area interpolation: each pixel the mean of its block)."""
    return F.interpolate(x0, size=(size, size), mode="area")


class UpsamplerTask(DenoiserTask):
    """The pixel DDPM's task with the upsampler's UNet ([x_t ; c] in, s as a class label) and its condition."""

    name = "upsampler"
    title = "upsampler (loss_tK: timesteps in bucket K of 5, K=0 least noise)"

    def __init__(self, config: Config, run, images: PixelImages, text_cache_dir, base_dir: Path):
        self.base_dir = base_dir
        super().__init__(config, run, images, text_cache_dir)

    def build_unet(self, channels: int, size: int):
        levels = self.config.upsampler.max_noise_level + 1
        return build_unet(self.config.unet, channels, size, self.text_encoder.hidden_size, upsampler_levels=levels)

    def micro_batches(self, step: int):
        """The denoiser's (x0, text, generator), with the condition c and its level s drawn from that generator."""
        up = self.config.upsampler
        for x0, context, generator in super().micro_batches(step):
            levels = torch.randint(0, up.max_noise_level + 1, (len(x0),), generator=generator).to(x0.device)
            noise = torch.randn(x0.shape, generator=generator)
            low = low_resolution(x0, up.low_resolution)
            yield x0, context | upsampling_condition(low, x0.shape[-1], levels, noise, self.noise_scheduler), generator

    @torch.no_grad()
    def sample(self, step: int, folder: Path) -> None:
        """Held-out images: bicubic from low resolution, the upsampler's (EMA weights), the originals."""
        rows = torch.tensor(held_out_rows(self.cache, 8))
        x0 = self.cache.latents(rows, torch.zeros(len(rows), dtype=torch.bool)).to(self.run.device)
        prompts = [self.cache.records[i]["captions"][0] for i in rows]
        low = low_resolution(x0, self.config.upsampler.low_resolution)
        upsampled = bicubic(low, x0.shape[-1])
        self.ema.store(self.unet.parameters())
        self.ema.copy_to(self.unet.parameters())
        pipe = Text2ImagePipeline(self.unet, None, self.text_encoder, self.noise_scheduler.config)
        settings = CascadeSettings(
            upsampler_steps=self.tc.sample_steps, guidance=self.tc.sample_guidance, noise_level=0
        )
        images = upsample(pipe, low, prompts, [""] * len(prompts), 1, settings, self.tc.sample_seed)
        self.ema.restore(self.unet.parameters())
        self.unet.train()
        labels = ["bicubic"] + [""] * (len(rows) - 1) + ["upsampler"] + [""] * (len(rows) - 1) + prompts
        grid = make_grid(to_pil(upsampled) + to_pil(images) + to_pil(x0), labels, cols=len(rows), cell=96)
        grid.save(folder / f"samples-{step:07d}.png")

    def save_model(self, folder: Path) -> None:
        """The denoiser's folder (the EMA upsampler, its schedule, the config), with the base model in base/."""
        super().save_model(folder)
        shutil.copytree(self.base_dir, folder / "base", dirs_exist_ok=True)


def check_base(base_dir: str | Path, config: Config) -> Path:
    """The base model folder, or a ValueError: a pixel-diffusion model at upsampler.low_resolution."""
    base_dir = Path(base_dir)
    family = model_family(base_dir)
    size = read_config_yaml(base_dir / "t2i_config.yaml").get("data", {}).get("image_size")
    wanted = config.upsampler.low_resolution
    if family != "pixel-diffusion" or size != wanted:
        raise ValueError(
            f"{base_dir}: the base model must be a pixel-diffusion model at upsampler.low_resolution = {wanted} "
            f"(`t2i train pixel-diffusion` with data.image_size: {wanted}); it is {family} at {size}"
        )
    return base_dir


def train_upsampler(config: Config, data_dir, base_dir, out_dir, cache_dir=None) -> Path:
    """Train (or resume) the upsampler on a dataset's images; returns the cascade folder OUT/model (the upsampler,
    the base model in base/). Caption embeddings are cached in `cache_dir` (None: OUT/cache)."""
    validate(config)
    require_family(config, "cascade")
    base_dir = check_base(base_dir, config)
    images = PixelImages(data_dir, config.data.image_size, config.data.split_fractions, config.data.flip)
    tc = config.diffusion_training
    run = start_run(config, tc, out_dir, precision=tc.mixed_precision, grad_accum=tc.grad_accum)
    return train(run, UpsamplerTask(config, run, images, cache_dir or Path(out_dir) / "cache", base_dir))
