"""Configs: dataclasses with documented fields, one YAML file per preset (configs/*.yaml), saved next
to every model they produce."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class DataConfig:
    image_size: int = 64  # side of the square training images, pixels
    flip: bool = True  # random horizontal flips (faces are left-right symmetric)
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)  # train/val/test by hash of the image id
    num_workers: int = 0  # DataLoader worker processes (0 = load in the training process)


@dataclass
class AutoencoderConfig:
    kind: str = "kl"  # "kl" (AutoencoderKL, Stable Diffusion's) or "vq" (VQModel)
    channels: tuple[int, ...] = (64, 128, 128)  # per resolution level; downsampling f = 2**(len - 1)
    layers_per_block: int = 1  # ResNet blocks per level in the encoder (decoder gets one more)
    latent_channels: int = 4  # 4 for KL, 3 for VQ in the LDM paper
    num_vq_embeddings: int = 1024  # VQ codebook size
    norm_num_groups: int = 32  # GroupNorm groups; must divide every entry of channels
    mid_block_attention: bool = True  # self-attention in the bottleneck

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channels) - 1)


@dataclass
class AutoencoderTrainConfig:
    steps: int = 2000  # optimizer steps
    batch_size: int = 32  # images per step (per process)
    lr: float = 4.5e-6 * 32  # Adam learning rate (LDM: 4.5e-6 x batch)
    warmup_steps: int = 100  # linear LR warm-up
    lr_schedule: str = "cosine"  # "cosine" (to 0 at `steps`) or "constant", after warm-up
    l1_weight: float = 1.0  # |x - x̂|
    l2_weight: float = 0.0  # (x - x̂)²
    kl_weight: float = 1e-6  # KL(q(z|x) || N(0, I)) for kind kl
    vq_commitment: float = 0.25  # codebook + β·commitment loss for kind vq
    lpips_weights: str | None = None  # path to a local LPIPS/VGG weights file; never downloaded
    lpips_weight: float = 1.0  # weight of the perceptual term when lpips_weights is set
    disc_start: int = 1000  # step at which the PatchGAN discriminator switches on
    disc_weight: float = 0.5  # multiplies the LDM adaptive weight of the adversarial term
    disc_channels: int = 64  # width of the first discriminator layer
    disc_layers: int = 3  # strided conv layers of the PatchGAN
    mixed_precision: str = "no"  # accelerate: "no", "bf16" or "fp16"
    seed: int = 0
    log_every: int = 10  # steps between TensorBoard scalars and the progress-bar update
    sample_every: int = 200  # steps between reconstruction-grid and loss-curve PNGs
    checkpoint_every: int = 200  # steps between checkpoints
    keep_checkpoints: int = 3  # how many checkpoints to keep
    scale_samples: int = 1000  # training images used to measure the latent scaling factor


@dataclass
class TextConfig:
    kind: str = "pretrained"  # "pretrained" (frozen local HF folder) or "scratch" (trained with the UNet)
    path: str | None = None  # local BERT/CLIP folder (pretrained) or tokenizer folder (scratch); None = packaged MiniLM
    max_tokens: int = 64  # captions are padded/truncated to this many tokens
    scratch_width: int = 256  # scratch encoder: hidden size (= the UNet's cross-attention width)
    scratch_layers: int = 4  # scratch encoder: transformer layers
    scratch_heads: int = 4  # scratch encoder: attention heads


@dataclass
class UNetConfig:
    channels: tuple[int, ...] = (64, 128, 192)  # per resolution level (each level halves the latent side)
    attention: tuple[bool, ...] = (False, True, True)  # cross-attention (text) blocks at each level
    layers_per_block: int = 2  # ResNet (+ transformer) layers per level
    attention_head_dim: int = 32  # channels per attention head
    norm_num_groups: int = 32  # GroupNorm groups; must divide every entry of channels


@dataclass
class DiffusionConfig:
    num_train_timesteps: int = 1000  # T
    beta_start: float = 0.00085  # Stable Diffusion's scaled-linear β schedule ...
    beta_end: float = 0.012  # ... β_t = (linspace(√β_start, √β_end, T))²
    prediction_type: str = "epsilon"  # "epsilon" (ε) or "v_prediction" (v = √ᾱ ε − √(1−ᾱ) z0)


@dataclass
class DiffusionTrainConfig:
    steps: int = 20000  # optimizer steps
    batch_size: int = 64  # latents per step per process (before gradient accumulation)
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 2e-4  # AdamW peak learning rate
    lr_schedule: str = "cosine"  # "cosine" (to 0 at `steps`) or "constant", after warm-up
    warmup_steps: int = 500  # linear warm-up
    weight_decay: float = 0.01  # AdamW
    grad_clip: float = 1.0  # max global gradient norm
    min_snr_gamma: float | None = 5.0  # min-SNR-γ loss weight; None switches it off
    captions_per_image: int | None = (
        None  # train on the first K captions of each image (None = all); bounds the text cache
    )
    cfg_dropout: float = 0.1  # probability that a caption is replaced by "" (for classifier-free guidance)
    ema_decay: float = 0.9999  # EMA max decay; LDM warm-up: decay_t = min(ema_decay, (1 + t) / (10 + t))
    mixed_precision: str = "no"  # accelerate: "no" (CPU default), "bf16" or "fp16" (GPUs)
    seed: int = 0
    log_every: int = 20  # steps between logged scalars
    sample_every: int = 500  # steps between sample grids and loss plots
    checkpoint_every: int = 500  # steps between checkpoints
    keep_checkpoints: int = 3
    sample_prompts: tuple[str, ...] = (
        "The person has high cheekbones, and pointy nose. She is wearing lipstick.",
        "This man has bushy eyebrows and a goatee.",
        "She is young, and smiling and has big lips, mouth slightly open.",
        "He wears eyeglasses and has black hair.",
        "This woman has blond hair and is wearing a hat.",
        "The man is bald and has a mustache.",
        "She has gray hair and wears earrings and a necklace.",
        "This man is wearing a necktie and is smiling.",
    )  # prompts of the sample grid
    sample_seed: int = 0  # seed of the sample grid (fixed, so grids compare across steps)
    sample_steps: int = 20  # DPM-Solver++ steps for the grid
    sample_guidance: float = 3.0  # classifier-free guidance scale for the grid


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    autoencoder_training: AutoencoderTrainConfig = field(default_factory=AutoencoderTrainConfig)
    text: TextConfig = field(default_factory=TextConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    diffusion_training: DiffusionTrainConfig = field(default_factory=DiffusionTrainConfig)


def diffusers_schedule_name(lr_schedule: str, section: str) -> str:
    """The `diffusers.optimization.get_scheduler` name for an `lr_schedule` field (warm-up included)."""
    names = {"cosine": "cosine", "constant": "constant_with_warmup"}
    if lr_schedule not in names:
        raise ValueError(f"{section}.lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    return names[lr_schedule]


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value, f"{where}.{name}")
        elif typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path) -> Config:
    """Read a YAML config; missing sections and fields take their defaults, unknown ones are an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    return _build(Config, yaml.safe_load(path.read_text()) or {}, str(path))


def to_dict(config) -> dict:
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in dataclasses.asdict(config).items()
        if not isinstance(v, dict)
    } | {k: to_dict(getattr(config, k)) for k, v in dataclasses.asdict(config).items() if isinstance(v, dict)}


def save_config(config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
