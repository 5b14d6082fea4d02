"""How a GAN samples (t2i.settings)."""

from __future__ import annotations

from dataclasses import dataclass

from t2i.settings import Settings, setting


@dataclass
class GANSettings(Settings):
    """How a GAN samples."""

    truncation: float = setting(1.0, "noise scale ψ: z ~ N(0, ψ² I); below 1 trades variety for fidelity", 0, 2)
