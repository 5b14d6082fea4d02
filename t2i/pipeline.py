"""Text2ImagePipeline: prompt -> τθ -> denoise latents with classifier-free guidance -> decode.

Each step is spelled out the way diffusers' StableDiffusionPipeline does it (encode prompt, prepare
latents, denoising loop, decode), so that a model exported to diffusers gives the same images.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    UNet2DConditionModel,
    UniPCMultistepScheduler,
)
from diffusers.utils.torch_utils import randn_tensor
from safetensors.torch import load_file

from t2i.autoencoder.model import load_autoencoder
from t2i.config import TextConfig, save_config, to_dict
from t2i.devices import autocast, resolve_precision
from t2i.families import model_family
from t2i.grid import to_pil
from t2i.model_folder import check_model_folder
from t2i.settings import Settings, setting
from t2i.text import load_text_encoder

SCHEDULERS = {
    "dpm++": DPMSolverMultistepScheduler,
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "euler": EulerDiscreteScheduler,
    "euler-a": EulerAncestralDiscreteScheduler,
    "unipc": UniPCMultistepScheduler,
}
MAX_GUIDANCE = 50.0  # classifier-free guidance scales above this only saturate the image


MODEL_FILES = [
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/t2i_text.json",
]  # what `t2i train diffusion` and `pixel-diffusion` write (plus text_encoder/model.safetensors when trained)
AUTOENCODER_FILES = ["vae/config.json", "vae/diffusion_pytorch_model.safetensors"]  # latent diffusion only


@dataclass
class SamplingSettings(Settings):
    """How a diffusion model samples (latent or pixel space)."""

    steps: int = setting(20, "sampler steps", 1, 1000)
    guidance: float = setting(3.0, "classifier-free guidance g: ε = ε_u + g (ε_c − ε_u); 1 = off", 0, MAX_GUIDANCE)
    scheduler: str = setting("dpm++", "the sampler", choices=tuple(SCHEDULERS))


def make_scheduler(name: str, train_scheduler_config) -> object:
    """A sampler configured from the training noise schedule (same β_t, T and prediction type). A schedule with
    clip_sample (pixel space) has every sampler that can clip its x0 prediction to [-1, 1] (diffusers' thresholding
    with a maximum of 1 is exactly that; Euler has no such option)."""
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {sorted(SCHEDULERS)}, got {name!r}")
    cls, extra = SCHEDULERS[name], {}
    if train_scheduler_config.get("clip_sample") and "thresholding" in inspect.signature(cls).parameters:
        extra = {"thresholding": True, "sample_max_value": 1.0}
    if name == "ddpm":  # "trailing" walks t = T−1 … 0; SD's "leading" + steps_offset 1 would ask for t = T at T steps
        extra["timestep_spacing"] = "trailing"
    return cls.from_config(train_scheduler_config, **extra)


def model_hash(weights: str | Path) -> str:
    """The first 10 hex digits of the SHA-256 of a model's weights file (web UIs' short model hash)."""
    return hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:10]


def save_model_config(model_dir: Path, config) -> None:
    """What every family's model folder holds beside its weights: the config it was trained with
    (t2i_config.yaml, its family included) and the text encoder's reference (text_encoder/t2i_text.json)."""
    (model_dir / "text_encoder").mkdir(parents=True, exist_ok=True)
    (model_dir / "text_encoder" / "t2i_text.json").write_text(json.dumps(to_dict(config.text), indent=2))
    save_config(config, model_dir / "t2i_config.yaml")


def load_text_encoder_of(model_dir: Path):
    """The text encoder a model folder names (text_encoder/t2i_text.json), with its weights if it was trained."""
    text_config = TextConfig(**json.loads((model_dir / "text_encoder" / "t2i_text.json").read_text()))
    text_encoder = load_text_encoder(text_config)
    if text_config.kind == "scratch":  # trained jointly with the model: its weights live in the model folder
        check_model_folder(model_dir, ["text_encoder/model.safetensors"], "t2i model folder")
        text_encoder.load_state_dict(load_file(model_dir / "text_encoder" / "model.safetensors"))
    return text_encoder.eval()


def check_request(
    prompt, negative_prompt, seed, num_images_per_prompt, output_type, output_types=("pil", "pt", "latent")
) -> tuple[list[str], list[str]]:
    """The prompts and negative prompts as lists, after checking what every family's pipeline takes; a ValueError
    naming the bad one."""
    prompts = [prompt] if isinstance(prompt, str) else list(prompt) if isinstance(prompt, list | tuple) else []
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError("prompt must be a string or a non-empty list of strings")
    negatives = negative_prompt if isinstance(negative_prompt, list) else [negative_prompt or ""] * len(prompts)
    if len(negatives) != len(prompts) or not all(isinstance(p, str) for p in negatives):
        raise ValueError("negative_prompt must be a string or a list of strings, one per prompt")
    if not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
        raise ValueError(f"num_images_per_prompt must be an integer >= 1, got {num_images_per_prompt!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if output_type not in output_types:
        raise ValueError(f"output_type must be one of {', '.join(output_types)}, got {output_type!r}")
    return prompts, negatives


class Text2ImagePipeline:
    """Latent diffusion (with `vae`) or pixel-space diffusion (`vae` None: the UNet denoises the image itself)."""

    takes_negative_prompt = True  # the unconditional half of classifier-free guidance

    def __init__(
        self,
        unet,
        vae,
        text_encoder,
        scheduler_config,
        name: str = "untitled",
        hash: str = "",
        defaults=None,
        mixed_precision: str = "auto",
    ):
        self.unet, self.vae, self.text_encoder = unet.eval(), vae.eval() if vae is not None else None, text_encoder
        self.scheduler_config = scheduler_config
        self.name, self.hash = name, hash
        self.defaults: SamplingSettings = defaults or SamplingSettings()  # what a call without settings uses
        self.mixed_precision = mixed_precision  # "auto" (bf16 where the device runs it natively), "no", "bf16", "fp16"

    @property
    def family(self) -> str:
        return "pixel-diffusion" if self.vae is None else "latent-diffusion"

    @property
    def autoencoder(self):
        return self.vae

    @property
    def image_size(self) -> int:
        factor = 1 if self.vae is None else 2 ** (len(self.vae.config.block_out_channels) - 1)
        return self.unet.config.sample_size * factor

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | torch.device = "cpu") -> Text2ImagePipeline:
        """Load a model folder written by `t2i train diffusion` (unet/, vae/, scheduler/, text_encoder/) or
        `t2i train pixel-diffusion` (the same without vae/)."""
        latent = model_family(model_dir) == "latent-diffusion"
        files = MODEL_FILES + (AUTOENCODER_FILES if latent else [])
        model_dir = check_model_folder(model_dir, files, "t2i model folder")
        unet = UNet2DConditionModel.from_pretrained(model_dir / "unet", use_safetensors=True, torch_dtype=torch.float32)
        vae = load_autoencoder(model_dir / "vae") if latent else None
        scheduler_config = DDPMScheduler.load_config(model_dir / "scheduler")
        defaults = SamplingSettings.of_model(model_dir)
        weights = model_dir / "unet" / "diffusion_pytorch_model.safetensors"
        text_encoder = load_text_encoder_of(model_dir)
        pipe = cls(unet, vae, text_encoder, scheduler_config, model_dir.resolve().name, model_hash(weights), defaults)
        return pipe.to(device)

    def to(self, device: str | torch.device) -> Text2ImagePipeline:
        for module in (self.unet, self.vae, self.text_encoder):
            if module is not None:
                module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        embeddings, _ = self.text_encoder.encode(prompts)
        return embeddings.to(self.device, self.unet.dtype)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        guidance_scale: float | None = None,
        num_inference_steps: int | None = None,
        scheduler: str | None = None,
        seed: int = 0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
        callback: Callable[[int, int], None] | None = None,
        settings: SamplingSettings | None = None,
    ):
        """Images for the prompts; `callback(step, total)` is called after every denoising step.
        The sampler settings are `settings` (None: `self.defaults`, the model folder's sampling.json if any),
        each replaced by diffusers' keyword for it when given (num_inference_steps, guidance_scale, scheduler)."""
        max_steps = self.scheduler_config["num_train_timesteps"]
        if num_inference_steps is not None and not (
            isinstance(num_inference_steps, int) and 1 <= num_inference_steps <= max_steps
        ):
            raise ValueError(
                f"num_inference_steps must be an integer from 1 to {max_steps}, got {num_inference_steps!r}"
            )
        if guidance_scale is not None and not (
            isinstance(guidance_scale, int | float) and 0 <= guidance_scale <= MAX_GUIDANCE
        ):
            raise ValueError(f"guidance_scale must be a number from 0 to {MAX_GUIDANCE}, got {guidance_scale!r}")
        settings = (settings or self.defaults).override(
            steps=num_inference_steps, guidance=guidance_scale, scheduler=scheduler
        )
        num_inference_steps, guidance_scale, scheduler = settings.steps, settings.guidance, settings.scheduler
        if num_inference_steps > max_steps:
            raise ValueError(
                f"steps must be at most the model's {max_steps} training timesteps, got {num_inference_steps}"
            )
        prompts, negatives = check_request(prompt, negative_prompt, seed, num_images_per_prompt, output_type)
        # the networks under autocast where the device runs bf16 natively ("auto"); the sampler stays in fp32
        with autocast(resolve_precision(self.mixed_precision, self.device), self.device):
            sampler = make_scheduler(scheduler, self.scheduler_config)
            batch = len(prompts) * num_images_per_prompt
            if generator is None:  # image k gets seed + k, so any one image can be made again on its own
                generator = [torch.Generator("cpu").manual_seed(seed + k) for k in range(batch)]

            # 1. encode the prompt (and the negative / empty prompt for classifier-free guidance)
            cond = self.encode_prompt(prompts).repeat_interleave(num_images_per_prompt, 0)
            use_cfg = guidance_scale > 1.0
            if use_cfg:
                uncond = self.encode_prompt(negatives).repeat_interleave(num_images_per_prompt, 0)
                context = torch.cat([uncond, cond])

            # 2. the sampler's timesteps, then latents z_T ~ N(0, I) scaled by its initial sigma (which depends on them)
            sampler.set_timesteps(num_inference_steps, device=self.device)
            size = self.unet.config.sample_size
            shape = (batch, self.unet.config.in_channels, size, size)
            latents = randn_tensor(shape, generator=generator, dtype=torch.float32).to(self.device, self.unet.dtype)
            latents = latents * sampler.init_noise_sigma

            # 3. denoising loop: ε = ε_u + g (ε_c − ε_u), then one sampler step
            takes_generator = "generator" in inspect.signature(sampler.step).parameters  # stochastic samplers
            for step, t in enumerate(sampler.timesteps, 1):
                model_input = torch.cat([latents] * 2) if use_cfg else latents
                model_input = sampler.scale_model_input(model_input, t)
                eps = self.unet(model_input, t, encoder_hidden_states=context if use_cfg else cond).sample.float()
                if use_cfg:
                    eps_uncond, eps_cond = eps.chunk(2)
                    eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
                extra = {"generator": generator} if takes_generator else {}
                latents = sampler.step(eps, t, latents, **extra).prev_sample
                if callback is not None:
                    callback(step, len(sampler.timesteps))

            # 4. decode: x = D(z0 / s) (in pixel space the denoised sample is the image)
            if output_type == "latent":
                return latents
            images = latents if self.vae is None else self.vae.decode(latents / self.vae.config.scaling_factor).sample
            images = images.float()
            return to_pil(images) if output_type == "pil" else images
