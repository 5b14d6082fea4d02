"""Stage 1 models: diffusers AutoencoderKL (default) or VQModel, built from an AutoencoderConfig."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, VQModel

from t2i.config import AutoencoderConfig
from t2i.model_folder import check_model_folder, load_diffusers_model


def build_autoencoder(config: AutoencoderConfig, image_size: int) -> AutoencoderKL | VQModel:
    """An untrained autoencoder; f = 2**(len(channels) - 1) downsampling."""
    if config.kind not in ("kl", "vq"):
        raise ValueError(f"autoencoder.kind must be 'kl' or 'vq', got {config.kind!r}")
    if config.downsample_factor not in (2, 4, 8, 16):
        raise ValueError(f"autoencoder.channels gives f={config.downsample_factor}; use 2 to 5 levels")
    if any(c % config.norm_num_groups for c in config.channels):
        raise ValueError(f"autoencoder.norm_num_groups={config.norm_num_groups} must divide every channel count")
    levels = len(config.channels)
    common = dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(config.channels),
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.norm_num_groups,
        sample_size=image_size,
        scaling_factor=1.0,  # measured after training (t2i.autoencoder.train.measure_scaling_factor)
        mid_block_add_attention=config.mid_block_attention,
    )
    if config.kind == "kl":
        return AutoencoderKL(**common)
    return VQModel(**common, num_vq_embeddings=config.num_vq_embeddings)


def load_autoencoder(path: str | Path) -> AutoencoderKL | VQModel:
    """Load a trained autoencoder folder (diffusers save_pretrained layout) of either kind, or a Hub id of one."""
    path = check_model_folder(path, ["config.json", "diffusion_pytorch_model.safetensors"], "autoencoder folder")
    config_file = path / "config.json"
    cls = VQModel if json.loads(config_file.read_text())["_class_name"] == "VQModel" else AutoencoderKL
    return load_diffusers_model(cls, path, "autoencoder folder").eval()


def encode(model: AutoencoderKL | VQModel, x: torch.Tensor) -> torch.Tensor:
    """Unscaled latents: the posterior mean for KL, the pre-quantization latents for VQ."""
    if isinstance(model, VQModel):
        return model.encode(x).latents
    return model.encode(x).latent_dist.mode()


@torch.no_grad()
def reconstruct(model: AutoencoderKL | VQModel, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """x̂ = D(E(x)) from `encode`'s latents, clamped to [-1, 1], in batches; float32 on x's device."""
    return torch.cat(
        [
            model.decode(encode(model, b.to(model.device, model.dtype))).sample.clamp(-1, 1).float().to(x.device)
            for b in x.split(batch_size)
        ]
    )
