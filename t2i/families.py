"""The model-family seam: a saved model folder says which family it is, and `load_pipeline` opens any of them.

    family            what it is                                           trained by
    latent-diffusion  UNet denoising autoencoder latents (Stable Diffusion)  t2i train autoencoder + diffusion
    pixel-diffusion   the same UNet denoising 64×64×3 pixels (DDPM)          t2i train pixel-diffusion
    cascade           pixel DDPM at low resolution + a diffusion upsampler   t2i train pixel-diffusion + upsampler
    gan               GAN-CLS: DCGAN generator on noise + sentence embedding  t2i train gan
    vq-transformer    a transformer over VQ image tokens (DALL-E's idea)     t2i train autoencoder (vq/dvae) + prior
    pixelcnn          a gated PixelCNN over the code grid (VQ-VAE's prior)   t2i train autoencoder (vq/dvae) + prior

A folder's family is the `family` field of its saved config (`t2i_config.yaml`); a folder without one is
latent diffusion (models written before the seam). Every family's pipeline has the same shape:

    pipe = load_pipeline(folder)
    pipe(prompts, negative_prompt=None, seed=0, num_images_per_prompt=1, output_type="pil",
         callback=None, settings=None)  # settings: the family's Settings; None = pipe.defaults
    pipe.defaults, pipe.name, pipe.hash, pipe.family, pipe.image_size, pipe.autoencoder (or None)
    pipe.takes_negative_prompt, pipe.takes_edits (the diffusion families: t2i.editing's image=, mask_image=, ...),
    pipe.takes_mixed_precision (then pipe.mixed_precision: "auto", "no", "bf16" or "fp16")

A new family is a folder (its model, its trainer as a t2i.training.loop.TrainingTask, its settings, its pipeline),
a line here, its config class in `t2i/config.py` (FAMILY_CONFIGS) and its `t2i train` command; generation,
serving, evaluation, the sampling flags and the page then take it as they are (docs/ARCHITECTURE.md, "Adding a
family").
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

from t2i.hub import local_folder
from t2i.yaml_file import read_config_yaml


class Family(NamedTuple):
    pipeline: str  # its pipeline class, "module:Class" (imported on use)
    settings: str  # its sampling settings class (a light module: the CLI reads it for its flags)


FAMILIES = {
    "latent-diffusion": Family("t2i.pipeline:Text2ImagePipeline", "t2i.diffusion.settings:SamplingSettings"),
    "pixel-diffusion": Family("t2i.pipeline:Text2ImagePipeline", "t2i.diffusion.settings:SamplingSettings"),
    "cascade": Family("t2i.cascade.pipeline:CascadePipeline", "t2i.cascade.settings:CascadeSettings"),
    "gan": Family("t2i.gan.pipeline:GANPipeline", "t2i.gan.settings:GANSettings"),
    "vq-transformer": Family(
        "t2i.vq_transformer.pipeline:VQTransformerPipeline", "t2i.vq_transformer.settings:TokenSamplingSettings"
    ),
    "pixelcnn": Family("t2i.pixelcnn.pipeline:PixelCNNPipeline", "t2i.vq_transformer.settings:TokenSamplingSettings"),
}


def imported(reference: str):
    """The object a "module:name" reference names."""
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


def settings_classes() -> dict[str, type]:
    """family -> its sampling settings class."""
    return {family: imported(entry.settings) for family, entry in FAMILIES.items()}


def model_family(model_dir: str | Path) -> str:
    """The family a model folder holds: its saved config's `family` (latent diffusion without a config)."""
    model_dir = local_folder(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"t2i model folder not found: {model_dir}")
    path = model_dir / "t2i_config.yaml"
    if not path.is_file():
        return "latent-diffusion"
    values = read_config_yaml(path)
    family = values.get("family", "latent-diffusion") if isinstance(values, dict) else None
    if family not in FAMILIES:
        raise ValueError(f"{path}: family must be one of {list(FAMILIES)}, got {family!r}")
    return family


def trained_parameters(pipe) -> int:
    """The parameters of every network a pipeline holds (and the pipelines it holds: a cascade's stages) but its
    frozen text encoders."""
    import torch

    values = [v for v in vars(pipe).values() if v is not pipe.text_encoder]
    networks = sum(p.numel() for m in values if isinstance(m, torch.nn.Module) for p in m.parameters())
    return networks + sum(trained_parameters(v) for v in values if hasattr(v, "text_encoder"))


def load_pipeline(model_dir: str | Path, device: str = "cpu"):
    """The pipeline of any family's model folder (or a Hub id of one), on `device`."""
    return imported(FAMILIES[model_family(model_dir)].pipeline).from_pretrained(model_dir, device)
