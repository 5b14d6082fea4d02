"""Stage 1 models: diffusers AutoencoderKL (default), VQModel, or DALL-E's discrete VAE (t2i.autoencoder.dvae),
built from an AutoencoderConfig."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, VQModel

from t2i.autoencoder.dvae import DiscreteVAE
from t2i.config import AutoencoderConfig
from t2i.model_folder import check_model_folder, load_diffusers_model

Autoencoder = AutoencoderKL | VQModel | DiscreteVAE
CLASSES = {"kl": AutoencoderKL, "vq": VQModel, "dvae": DiscreteVAE}  # autoencoder.kind -> its class


def autoencoder_kind(model: Autoencoder) -> str:
    return next(kind for kind, cls in CLASSES.items() if isinstance(model, cls))


def build_autoencoder(config: AutoencoderConfig, image_size: int) -> Autoencoder:
    """An untrained autoencoder; f = 2**(len(channels) - 1) downsampling."""
    if config.kind not in CLASSES:
        raise ValueError(f"autoencoder.kind must be one of {list(CLASSES)}, got {config.kind!r}")
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
    return CLASSES[config.kind](**common, num_vq_embeddings=config.num_vq_embeddings)


def load_autoencoder(path: str | Path) -> Autoencoder:
    """Load a trained autoencoder folder (diffusers save_pretrained layout) of any kind, or a Hub id of one."""
    path = check_model_folder(path, ["config.json", "diffusion_pytorch_model.safetensors"], "autoencoder folder")
    name = json.loads((path / "config.json").read_text())["_class_name"]
    cls = next((cls for cls in CLASSES.values() if cls.__name__ == name), AutoencoderKL)
    return load_diffusers_model(cls, path, "autoencoder folder").eval()


def encode(model: Autoencoder, x: torch.Tensor) -> torch.Tensor:
    """Unscaled latents: the posterior mean for KL, the pre-quantization latents for VQ, the argmax codes'
    codebook vectors for the discrete VAE."""
    if isinstance(model, AutoencoderKL):
        return model.encode(x).latent_dist.mode()
    return model.encode(x).latents


@torch.no_grad()
def reconstruct(model: Autoencoder, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """x̂ = D(E(x)) from `encode`'s latents, clamped to [-1, 1], in batches; float32 on x's device."""
    return torch.cat(
        [
            model.decode(encode(model, b.to(model.device, model.dtype))).sample.clamp(-1, 1).float().to(x.device)
            for b in x.split(batch_size)
        ]
    )
