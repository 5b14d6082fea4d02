"""How a cascade samples (t2i.settings): the base model's sampler settings, then the upsampler's."""

from __future__ import annotations

from dataclasses import dataclass

from t2i.diffusion.settings import SamplingSettings
from t2i.settings import setting


@dataclass
class CascadeSettings(SamplingSettings):
    """How a cascade samples: the base model with steps, guidance and scheduler; the upsampler with the same
    guidance and scheduler, its own steps, reading the base image noised to noise_level."""

    upsampler_steps: int = setting(20, "the upsampler's sampler steps", 1, 1000)
    noise_level: int = setting(
        100, "the base image is noised to this timestep before the upsampler reads it (0: clean)", 0, 999
    )

    def base(self) -> SamplingSettings:
        return SamplingSettings(self.steps, self.guidance, self.scheduler)

    def upsampler(self) -> SamplingSettings:
        return SamplingSettings(self.upsampler_steps, self.guidance, self.scheduler)
