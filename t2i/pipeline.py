"""Text2ImagePipeline: prompt -> τθ -> denoise latents with classifier-free guidance -> decode.

Each step is spelled out the way diffusers' StableDiffusionPipeline does it (encode prompt, prepare
latents, denoising loop, decode), so that a model exported to diffusers gives the same images.
"""

from __future__ import annotations

import dataclasses
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
from t2i.config import TextConfig, from_dict
from t2i.grid import to_pil
from t2i.model_folder import check_model_folder
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
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/t2i_text.json",
]  # what `t2i train diffusion` writes (plus text_encoder/model.safetensors for a jointly trained encoder)


@dataclass
class SamplingSettings:
    """How a model samples, with the defaults written once, here. A model folder's `sampling.json`
    overrides them for that model (`t2i eval report --save-defaults` writes the measured best there)."""

    steps: int = 20  # sampler steps
    guidance: float = 3.0  # classifier-free guidance g: ε = ε_u + g (ε_c − ε_u); 1 = off
    scheduler: str = "dpm++"  # one of SCHEDULERS

    FILE = "sampling.json"

    @classmethod
    def of_model(cls, model_dir: str | Path) -> SamplingSettings:
        path = Path(model_dir) / cls.FILE
        if not path.is_file():
            return cls()
        try:
            settings = from_dict(cls, json.loads(path.read_text(encoding="utf-8")), str(path))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error.msg})") from None
        if not (
            settings.scheduler in SCHEDULERS and 1 <= settings.steps <= 1000 and 0 <= settings.guidance <= MAX_GUIDANCE
        ):
            raise ValueError(f"{path}: needs steps 1-1000, guidance 0-50 and a scheduler in {list(SCHEDULERS)}")
        return settings

    def override(self, steps: int | None, guidance: float | None, scheduler: str | None) -> SamplingSettings:
        """These settings with each given one in place of its default (None keeps the default)."""
        given = {"steps": steps, "guidance": guidance, "scheduler": scheduler}
        return dataclasses.replace(self, **{k: v for k, v in given.items() if v is not None})

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / self.FILE
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        return path


def make_scheduler(name: str, train_scheduler_config) -> object:
    """A sampler configured from the training noise schedule (same β_t, T and prediction type)."""
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {sorted(SCHEDULERS)}, got {name!r}")
    if name == "ddpm":  # "trailing" walks t = T−1 … 0; SD's "leading" + steps_offset 1 would ask for t = T at T steps
        return DDPMScheduler.from_config(train_scheduler_config, timestep_spacing="trailing")
    return SCHEDULERS[name].from_config(train_scheduler_config)


def model_hash(model_dir: str | Path) -> str:
    """The first 10 hex digits of the SHA-256 of the UNet weights (web UIs' short model hash)."""
    digest = hashlib.sha256((Path(model_dir) / "unet" / "diffusion_pytorch_model.safetensors").read_bytes())
    return digest.hexdigest()[:10]


class Text2ImagePipeline:
    def __init__(
        self, unet, vae, text_encoder, scheduler_config, name: str = "untitled", hash: str = "", defaults=None
    ):
        self.unet, self.vae, self.text_encoder = unet.eval(), vae.eval(), text_encoder
        self.scheduler_config = scheduler_config
        self.name, self.hash = name, hash
        self.defaults: SamplingSettings = defaults or SamplingSettings()  # what a call without settings uses

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | torch.device = "cpu") -> Text2ImagePipeline:
        """Load a model folder written by `t2i train diffusion`: unet/, vae/, scheduler/, text_encoder/."""
        model_dir = check_model_folder(model_dir, MODEL_FILES, "t2i model folder")
        unet = UNet2DConditionModel.from_pretrained(model_dir / "unet", use_safetensors=True, torch_dtype=torch.float32)
        vae = load_autoencoder(model_dir / "vae")
        text_config = TextConfig(**json.loads((model_dir / "text_encoder" / "t2i_text.json").read_text()))
        text_encoder = load_text_encoder(text_config)
        if text_config.kind == "scratch":  # trained jointly with the UNet: its weights live in the model folder
            check_model_folder(model_dir, ["text_encoder/model.safetensors"], "t2i model folder")
            text_encoder.load_state_dict(load_file(model_dir / "text_encoder" / "model.safetensors"))
        scheduler_config = DDPMScheduler.load_config(model_dir / "scheduler")
        defaults = SamplingSettings.of_model(model_dir)
        pipe = cls(
            unet, vae, text_encoder.eval(), scheduler_config, model_dir.resolve().name, model_hash(model_dir), defaults
        )
        return pipe.to(device)

    def to(self, device: str | torch.device) -> Text2ImagePipeline:
        for module in (self.unet, self.vae, self.text_encoder):
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
    ):
        """Images for the prompts; `callback(step, total)` is called after every denoising step.
        Settings left as None come from `self.defaults` (the model folder's sampling.json, if any)."""
        num_inference_steps, guidance_scale, scheduler = dataclasses.astuple(
            self.defaults.override(num_inference_steps, guidance_scale, scheduler)
        )
        prompts = [prompt] if isinstance(prompt, str) else list(prompt) if isinstance(prompt, list | tuple) else []
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompt must be a string or a non-empty list of strings")
        negatives = negative_prompt if isinstance(negative_prompt, list) else [negative_prompt or ""] * len(prompts)
        if len(negatives) != len(prompts) or not all(isinstance(p, str) for p in negatives):
            raise ValueError("negative_prompt must be a string or a list of strings, one per prompt")
        max_steps = self.scheduler_config["num_train_timesteps"]
        if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= max_steps:
            raise ValueError(
                f"num_inference_steps must be an integer from 1 to {max_steps}, got {num_inference_steps!r}"
            )
        if not isinstance(guidance_scale, int | float) or not 0 <= guidance_scale <= MAX_GUIDANCE:
            raise ValueError(f"guidance_scale must be a number from 0 to {MAX_GUIDANCE}, got {guidance_scale}")
        if not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be an integer >= 1, got {num_images_per_prompt!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if output_type not in ("pil", "pt", "latent"):
            raise ValueError(f"output_type must be 'pil', 'pt' or 'latent', got {output_type!r}")
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
            eps = self.unet(model_input, t, encoder_hidden_states=context if use_cfg else cond).sample
            if use_cfg:
                eps_uncond, eps_cond = eps.chunk(2)
                eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
            extra = {"generator": generator} if takes_generator else {}
            latents = sampler.step(eps, t, latents, **extra).prev_sample
            if callback is not None:
                callback(step, len(sampler.timesteps))

        # 4. decode: x = D(z0 / s)
        if output_type == "latent":
            return latents
        images = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        return to_pil(images) if output_type == "pil" else images
