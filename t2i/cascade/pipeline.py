"""CascadePipeline: low resolution + upsample (the seed's step between pixel and latent diffusion; SR3, Imagen).

The base model (a pixel-diffusion folder in base/) draws the prompt at low resolution; the upsampler draws it again
at full size from noise, reading the base image upsampled and noised to `noise_level` (what it trained on:
t2i.cascade.train), with the same prompt, guidance and seed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.utils.torch_utils import randn_tensor

from t2i.cascade.settings import CascadeSettings
from t2i.diffusion.settings import EditSettings
from t2i.family_pipeline import FamilyPipeline
from t2i.model_folder import check_model_folder, load_diffusers_model
from t2i.pipeline import MODEL_FILES, Request, Text2ImagePipeline, load_text_encoder_of, make_scheduler, model_hash
from t2i.text import PretrainedTextEncoder

CASCADE_FILES = [*MODEL_FILES, *(f"base/{name}" for name in MODEL_FILES)]  # the upsampler's, the base model's


def bicubic(low: torch.Tensor, size: int) -> torch.Tensor:
    """up(x_lr): the low-resolution images brought to size × size by bicubic interpolation, clamped to [-1, 1]."""
    return F.interpolate(low.float(), size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)


def upsampling_condition(low: torch.Tensor, size: int, levels: torch.Tensor, noise: torch.Tensor, schedule):
    """The upsampler's inputs beside the text: c = √ᾱ_s up(x_lr) + √(1−ᾱ_s) ε' (up: bicubic to `size`), and s."""
    up = bicubic(low, size)
    return {"low_resolution": schedule.add_noise(up, noise.to(up.device), levels), "class_labels": levels}


@torch.no_grad()
def upsample(
    upsampler: Text2ImagePipeline,
    low,
    prompts,
    negatives,
    per_prompt: int,
    settings: CascadeSettings,
    seed,
    callback=None,
) -> torch.Tensor:
    """The upsampler's images (pixels) of `low`, one low-resolution image per prompt × per_prompt; image k's noise
    (z_T, then ε' of its condition) from seed + k; `callback(step, steps)` after every step."""
    # 1. the text inputs: [negative; prompt] under guidance
    request = Request(
        prompts, negatives, None, per_prompt, settings.upsampler(), EditSettings(), None, None, False, False
    )
    context, guided = upsampler.encode_request(request)

    # 2. timesteps and z_T, then the condition c = √ᾱ_s up(x_lr) + √(1−ᾱ_s) ε' from the same generators
    sampler = make_scheduler(settings.scheduler, upsampler.scheduler_config)
    generators = [torch.Generator().manual_seed(seed + k) for k in range(request.batch)]
    _, latents = upsampler.prepare_latents(sampler, request, generators)
    levels = torch.full((request.batch,), settings.noise_level, device=upsampler.device)
    noise = randn_tensor(latents.shape, generator=generators, dtype=torch.float32)
    schedule = DDPMScheduler.from_config(upsampler.scheduler_config)
    condition = upsampling_condition(low.to(upsampler.device), upsampler.image_size, levels, noise, schedule)
    context |= {name: torch.cat([value] * 2) if guided else value for name, value in condition.items()}

    # 3. the denoising loop
    for step, t in enumerate(sampler.timesteps, 1):
        latents = upsampler.denoise_step(sampler, latents, t, context, settings.guidance, generators)
        if callback is not None:
            callback(step, len(sampler.timesteps))
    return latents


class CascadePipeline(FamilyPipeline):
    family = "cascade"
    autoencoder = None
    takes_negative_prompt = True

    def __init__(
        self, base: Text2ImagePipeline, upsampler: Text2ImagePipeline, name="untitled", hash="", defaults=None
    ):
        self.base, self.upsampler, self.text_encoder = base, upsampler, upsampler.text_encoder
        self.name, self.hash = name, hash
        self.defaults: CascadeSettings = defaults or CascadeSettings()
        self.max_noise_level = upsampler.unet.config.num_class_embeds - 1

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | torch.device = "cpu") -> CascadePipeline:
        """Load a folder written by `t2i train upsampler`: the upsampler (unet/, scheduler/, text_encoder/) and
        the base model in base/."""
        model_dir = check_model_folder(model_dir, CASCADE_FILES, "t2i cascade model folder")
        base = Text2ImagePipeline.from_pretrained(model_dir / "base")
        base.mixed_precision = "no"  # float32 throughout, as the upsampler
        unet = load_diffusers_model(UNet2DConditionModel, model_dir / "unet", "upsampler UNet folder")
        scheduler_config = DDPMScheduler.load_config(model_dir / "scheduler")
        reference = "text_encoder/t2i_text.json"  # the same frozen encoder for both stages: loaded once
        shared = (model_dir / reference).read_text() == (model_dir / "base" / reference).read_text()
        shared = shared and isinstance(base.text_encoder, PretrainedTextEncoder)  # a scratch one has its own weights
        text_encoder = base.text_encoder if shared else load_text_encoder_of(model_dir)
        upsampler = Text2ImagePipeline(unet, None, text_encoder, scheduler_config)
        weights = model_hash(model_dir / "unet" / "diffusion_pytorch_model.safetensors")
        hash = hashlib.sha256(f"{base.hash} {weights}".encode()).hexdigest()[:10]  # both stages' weights
        name = model_dir.resolve().name
        return cls(base, upsampler, name, hash, CascadeSettings.of_model(model_dir)).to(device)

    def to(self, device: str | torch.device) -> CascadePipeline:
        self.base.to(device)
        self.upsampler.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.upsampler.device

    @property
    def image_size(self) -> int:
        return self.upsampler.image_size

    def draw(self, prompts, negatives, seed: int, n: int, settings: CascadeSettings, callback) -> torch.Tensor:
        """The base model's images, then the upsampler's from them; `callback(step, base + upsampler steps)`."""
        if settings.noise_level > self.max_noise_level:
            raise ValueError(
                f"noise_level must be at most {self.max_noise_level}, the highest the upsampler trained on"
            )
        total = settings.steps + settings.upsampler_steps

        # 1. the base model: the prompt at low resolution
        low = self.base(
            prompts,
            negatives,
            seed=seed,
            num_images_per_prompt=n,
            output_type="pt",
            settings=settings.base(),
            callback=None if callback is None else lambda step, _: callback(step, total),
        )

        # 2. the upsampler: the prompt again at full size, reading the base images
        after = None if callback is None else lambda step, _: callback(settings.steps + step, total)
        return upsample(self.upsampler, low, prompts, negatives, n, settings, seed, after)
