"""How a diffusion model (latent or pixel space) samples and edits: the settings the CLI, the server and the page
read (t2i.settings)."""

from __future__ import annotations

from dataclasses import dataclass

from t2i.settings import MAX_GUIDANCE, SWAP_STEPS, Settings, setting

# t2i.pipeline.SCHEDULERS: their samplers; lcm samples a distilled student (t2i distill)
SCHEDULER_NAMES = ("dpm++", "ddim", "ddpm", "euler", "euler-a", "unipc", "lcm")


@dataclass
class SamplingSettings(Settings):
    """How a diffusion model samples (latent or pixel space)."""

    steps: int = setting(20, "sampler steps", 1, 1000)
    guidance: float = setting(3.0, "classifier-free guidance g: ε = ε_u + g (ε_c − ε_u); 1 = off", 0, MAX_GUIDANCE)
    scheduler: str = setting("dpm++", "the sampler", choices=SCHEDULER_NAMES)


@dataclass
class EditSettings(Settings):
    """How `image=` and `source_prompt=` edit (t2i.editing); each matters only with its input."""

    strength: float = setting(1.0, "image-to-image: the share of the sampler's steps run; 0 keeps the image", 0, 1)
    swap_steps: float = setting(SWAP_STEPS, "word swap: the share of steps with the source's cross-attention", 0, 1)
    self_swap_steps: float = setting(0.0, "word swap: the share of steps with the source's self-attention", 0, 1)
