"""GAN-CLS (Reed et al., 2016, "Generative Adversarial Text to Image Synthesis"): DCGAN networks with the
caption's sentence embedding h = mean of the text encoder's token states (normalized) as the condition.

    generator      [z ; φ(h)] ─► 4×4 ─► (transposed conv ×2, BatchNorm, ReLU)* ─► size×size×3, tanh
    discriminator  image ─► (strided conv, BatchNorm, LeakyReLU)* ─► 4×4 features
                   [features ; φ'(h) tiled over 4×4] ─► 1×1 conv ─► 4×4 conv ─► logit

φ and φ' are linear projections to `text_projection` features with a LeakyReLU (one per network). With
`spectral_norm`, every layer of the discriminator is divided by its largest singular value (SN-GAN, Miyato et al.
2018; one power iteration per step) and its BatchNorms are left out.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from t2i.config import GANConfig


def _levels(image_size: int) -> int:
    """The number of ×2 steps between 4×4 and the image."""
    return int(math.log2(image_size)) - 2


def _projection(text_dim: int, features: int) -> nn.Module:
    return nn.Sequential(nn.Linear(text_dim, features), nn.LeakyReLU(0.2))


class Generator(nn.Module):
    def __init__(self, config: GANConfig, image_size: int, text_dim: int):
        super().__init__()
        self.noise_dim, self.image_size = config.noise_dim, image_size
        self.project = _projection(text_dim, config.text_projection)
        width = config.generator_channels * 2 ** (_levels(image_size) - 1)  # at 4×4; halves per level up
        layers = [
            nn.ConvTranspose2d(config.noise_dim + config.text_projection, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(_levels(image_size) - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, size, size) in [-1, 1] from noise z (B, noise_dim) and sentence embeddings h (B, D)."""
        x = torch.cat([z, self.project(h)], 1)  # [z ; φ(h)]
        return self.net(x[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, config: GANConfig, image_size: int, text_dim: int):
        super().__init__()
        sn = config.spectral_norm
        normalized = nn.utils.parametrizations.spectral_norm if sn else (lambda layer: layer)
        norm = (lambda _: nn.Identity()) if sn else nn.BatchNorm2d
        width = config.discriminator_channels
        layers = [normalized(nn.Conv2d(3, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        for _ in range(_levels(image_size) - 1):
            layers += [
                normalized(nn.Conv2d(width, width * 2, 4, 2, 1, bias=sn)),
                norm(width * 2),
                nn.LeakyReLU(0.2, True),
            ]
            width *= 2
        self.features = nn.Sequential(*layers)
        self.project = nn.Sequential(normalized(nn.Linear(text_dim, config.text_projection)), nn.LeakyReLU(0.2))
        self.judge = nn.Sequential(
            normalized(nn.Conv2d(width + config.text_projection, width, 1, bias=sn)),
            norm(width),
            nn.LeakyReLU(0.2, True),
            normalized(nn.Conv2d(width, 1, 4, 1, 0)),
        )

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One logit per image: does it look real, and does it match the text h?"""
        features = self.features(x)
        text = self.project(h)[:, :, None, None].expand(-1, -1, *features.shape[2:])  # φ'(h) tiled over 4×4
        return self.judge(torch.cat([features, text], 1)).flatten()


def init_weights(module: nn.Module) -> None:
    """DCGAN's initialization: convolutions N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        spectral = nn.utils.parametrize.is_parametrized(module, "weight")  # W / σ(W): initialize W itself
        nn.init.normal_(module.parametrizations.weight.original if spectral else module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
