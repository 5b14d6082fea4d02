"""Configs: dataclasses with documented fields, one YAML file per preset (configs/*.yaml), saved next
to every model they produce."""

from __future__ import annotations

import dataclasses
import logging
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from t2i.families import FAMILIES
from t2i.yaml_file import read_config_yaml

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "no", "bf16", "fp16")  # mixed_precision: "auto" is t2i.devices.resolve_precision's
MAX_WIDTH = 4096  # bound on image sizes and channel widths: beyond it a model fails to build after minutes of setup
MAX_SEED = 2**32 - 1  # the largest seed numpy's and torch's generators both take
FamilyName = Literal[tuple(FAMILIES)]
Precision = Literal[PRECISIONS]
LRSchedule = Literal["cosine", "constant"]


def ranged(default, low=None, high=None, *, above=None, below=None):
    """A config field with its range, which `validate` checks: low <= value <= high, value > above, value < below
    (None allowed where the field's type says `| None`)."""
    return field(default=default, metadata={"low": low, "high": high, "above": above, "below": below})


def seed_field(default: int = 0):
    return ranged(default, 0, MAX_SEED)


@dataclass
class DataConfig:
    image_size: int = ranged(64, 8, MAX_WIDTH)  # side of the square training images, pixels
    flip: bool = True  # random horizontal flips (faces are left-right symmetric)
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)  # train/val/test by hash of the image id
    num_workers: int = ranged(0, 0, 256)  # DataLoader worker processes (0 = load in the training process)


@dataclass
class AutoencoderConfig:
    kind: Literal["kl", "vq", "dvae"] = "kl"  # "kl" (AutoencoderKL, Stable Diffusion's), "vq" (VQModel) or "dvae"
    # (DALL-E's discrete VAE, trained through a Gumbel-softmax relaxation: t2i.autoencoder.dvae)
    channels: tuple[int, ...] = (64, 128, 128)  # per resolution level; downsampling f = 2**(len - 1)
    layers_per_block: int = ranged(1, 1)  # ResNet blocks per level in the encoder (decoder gets one more)
    latent_channels: int = ranged(4, 1, MAX_WIDTH)  # 4 for KL, 3 for VQ in the LDM paper
    num_vq_embeddings: int = ranged(1024, 2)  # codebook size K of kinds vq and dvae (DALL-E: 8192)
    norm_num_groups: int = 32  # GroupNorm groups; must divide every entry of channels
    mid_block_attention: bool = True  # self-attention in the bottleneck

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channels) - 1)


@dataclass
class TrainConfig:
    """What every training section has: the length, the seed and the cadence of logs, grids and checkpoints."""

    steps: int = ranged(2000, 1)  # optimizer steps
    lr: float = ranged(2e-4, above=0)  # peak learning rate
    seed: int = seed_field()
    log_every: int = ranged(20, 1)  # steps between logged scalars (TensorBoard, loss history, progress bar)
    sample_every: int = ranged(500, 1)  # steps between sample grids and loss plots
    checkpoint_every: int = ranged(500, 1)  # steps between checkpoints
    keep_checkpoints: int = ranged(3, 1)  # how many checkpoints to keep
    snapshot_every: int | None = ranged(None, 1)  # steps between model folders kept along the way
    # (OUT/snapshots/step-N: what the milestones curves score); None: only the final one


@dataclass
class AutoencoderTrainConfig(TrainConfig):
    steps: int = ranged(2000, 1)  # optimizer steps
    batch_size: int = ranged(32, 1)  # images per step (per process)
    lr: float = ranged(4.5e-6 * 32, above=0)  # Adam learning rate (LDM: 4.5e-6 x batch)
    warmup_steps: int = ranged(100, 0)  # linear LR warm-up
    lr_schedule: LRSchedule = "cosine"  # "cosine" (to 0 at `steps`) or "constant", after warm-up
    l1_weight: float = ranged(1.0, 0)  # |x - x̂|
    l2_weight: float = ranged(0.0, 0)  # (x - x̂)²
    kl_weight: float = ranged(1e-6, 0)  # KL(q(z|x) || N(0, I)) for kind kl
    vq_commitment: float = ranged(0.25, 0)  # vq: β of diffusers' quantizer loss ‖z_e − sg[e]‖² + β·‖sg[z_e] − e‖²
    vq_restart_every: int = ranged(0, 0)  # vq: every N steps, the codes no encoder output chose since the last
    # restart move onto encoder outputs of the batch (t2i.autoencoder.codebook; 0: never)
    gumbel_tau_start: float = ranged(1.0, above=0)  # dvae: Gumbel-softmax temperature τ at step 0 (DALL-E: 1)
    gumbel_tau_end: float = ranged(1 / 16, above=0)  # dvae: τ after the annealing (DALL-E: 1/16)
    gumbel_anneal_steps: int | None = ranged(None, 1)  # dvae: steps of the cosine (in log τ) annealing; None = all
    dvae_kl_weight: float = ranged(1e-3, 0)  # dvae: β of KL(softmax(logits) ‖ uniform), summed per image
    dvae_kl_warmup: int = ranged(500, 0)  # dvae: β grows linearly from 0 over these steps (DALL-E: 5,000)
    lpips_weights: str | None = None  # path to a local LPIPS/VGG weights file; never downloaded
    lpips_weight: float = ranged(1.0, 0)  # weight of the perceptual term when lpips_weights is set
    disc_start: int = ranged(1000, 0)  # step at which the PatchGAN discriminator switches on
    disc_weight: float = ranged(0.5, 0)  # multiplies the LDM adaptive weight of the adversarial term
    disc_channels: int = ranged(64, 1)  # width of the first discriminator layer
    disc_layers: int = ranged(3, 1)  # strided conv layers of the PatchGAN
    mixed_precision: Precision = "auto"  # "auto" (bf16 where the GPU or CPU runs it natively, else fp32), "no", ...
    compile: bool = False  # torch.compile the autoencoder (GPUs; compiling takes a minute or two)
    channels_last: bool = False  # NHWC memory layout for the convolutions (GPUs)
    log_every: int = ranged(10, 1)  # steps between TensorBoard scalars and the progress-bar update
    sample_every: int = ranged(200, 1)  # steps between reconstruction-grid and loss-curve PNGs
    checkpoint_every: int = ranged(200, 1)  # steps between checkpoints
    scale_samples: int = ranged(1000, 1)  # training images used to measure the latent scaling factor


@dataclass
class TextConfig:
    kind: Literal["pretrained", "scratch"] = "pretrained"  # "pretrained" (frozen local HF folder) or "scratch"
    # (trained with the UNet)
    path: str | None = None  # local BERT/CLIP folder (pretrained) or tokenizer folder (scratch); None = packaged MiniLM
    max_tokens: int = ranged(64, 2, 512)  # captions are padded/truncated to this many tokens
    scratch_width: int = 256  # scratch encoder: hidden size (= the UNet's cross-attention width)
    scratch_layers: int = ranged(4, 1)  # scratch encoder: transformer layers
    scratch_heads: int = 4  # scratch encoder: attention heads; must divide scratch_width


@dataclass
class UNetConfig:
    channels: tuple[int, ...] = (64, 128, 192)  # per resolution level (each level halves the latent side)
    attention: tuple[bool, ...] = (False, True, True)  # cross-attention (text) blocks at each level
    layers_per_block: int = ranged(2, 1)  # ResNet (+ transformer) layers per level
    attention_head_dim: int = 32  # channels per attention head; must divide every entry of channels
    norm_num_groups: int = 32  # GroupNorm groups; must divide every entry of channels
    pooled_text: bool = True  # add the caption's sentence embedding (mean of the text encoder's states) to the
    # time embedding, as SDXL adds its pooled text embedding: a condition that paraphrases share
    sentence_tokens: bool = False  # the sentence embedding also as 10 extra context tokens that cross-attention
    # reads at every resolution (diffusers' text_image_proj); token dropout never hides them


@dataclass
class DiffusionConfig:
    num_train_timesteps: int = ranged(1000, 2)  # T
    beta_schedule: Literal["scaled_linear", "linear"] = "scaled_linear"  # SD: β_t = (linspace(√β_1, √β_T, T))²;
    # DDPM: "linear"
    beta_start: float = 0.00085  # β_1 (DDPM in pixel space: 1e-4)
    beta_end: float = 0.012  # β_T (DDPM in pixel space: 0.02); 0 < beta_start < beta_end < 1
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"  # ε or v = √ᾱ ε − √(1−ᾱ) z0
    clip_sample: bool = False  # samplers clip the predicted x0 to [-1, 1] (DDPM's choice in pixel space)


@dataclass
class CaptionAugmentConfig:
    """Training-time caption rewrites (t2i.data.augment), for every family that takes text."""

    rewrites: int = ranged(1, 0, 16)  # rewrites of each training caption, drawn as often as the caption (0: off);
    # each is encoded once into the text cache, so caching takes (1 + rewrites)× as long
    shuffle_clauses: bool = True  # a rewrite puts the caption's sentences in a random order
    shuffle_phrases: bool = False  # ... and, inside each sentence, its phrases (between commas, semicolons and
    # "and") in a random order with random joiners, each modifier kept with its noun (any data: docs/rephrasing.md)
    drop_filler: float = ranged(0.25, 0, below=1)  # ... and drops each filler word ("this", "the", ...) with this
    # probability
    face_shapes: bool = False  # ... or, for captions in the synthetic faces' phrase table, writes their attributes
    # in other sentence shapes, with any of each attribute's phrases (configs/demo.yaml: on)
    token_dropout: float = ranged(0.1, 0, below=1)  # diffusion: each real token of a caption is hidden from
    # cross-attention with this probability in a training step (the sentence embedding stays the whole caption's)
    sentence_only: float = ranged(0.0, 0, 1)  # diffusion with unet.pooled_text or sentence_tokens: the probability
    # that a caption reaches the UNet through its sentence embedding alone (cross-attention sees the empty caption)


@dataclass
class DiffusionTrainConfig(TrainConfig):
    steps: int = ranged(20000, 1)  # optimizer steps
    batch_size: int = ranged(64, 1)  # latents per step per process (before gradient accumulation)
    grad_accum: int = ranged(1, 1)  # micro-batches per optimizer step
    lr: float = ranged(2e-4, above=0)  # AdamW peak learning rate
    lr_schedule: LRSchedule = "cosine"  # "cosine" (to 0 at `steps`) or "constant", after warm-up
    warmup_steps: int = ranged(500, 0)  # linear warm-up
    weight_decay: float = ranged(0.01, 0)  # AdamW
    grad_clip: float = ranged(1.0, above=0)  # max global gradient norm
    min_snr_gamma: float | None = ranged(5.0, above=0)  # min-SNR-γ loss weight; None switches it off
    captions_per_image: int | None = ranged(None, 1)  # train on the first K captions of each image (None = all);
    # bounds the text cache
    cfg_dropout: float = ranged(0.1, 0, below=1)  # probability that a caption is replaced by "" (for CFG)
    ema_decay: float = ranged(0.9999, 0, 1)  # EMA max decay; LDM warm-up: decay_t = min(ema_decay, (1+t)/(10+t))
    mixed_precision: Precision = "auto"  # "auto" (bf16 where the GPU or CPU runs it natively, else fp32), "no", ...
    compile: bool = False  # torch.compile the UNet (GPUs; compiling takes a minute or two)
    channels_last: bool = False  # NHWC memory layout for the convolutions (GPUs)
    sample_prompts: tuple[str, ...] = ()  # prompts of the sample grid; () = first captions of 8 held-out images
    sample_seed: int = seed_field()  # seed of the sample grid (fixed, so grids compare across steps)
    sample_steps: int = ranged(20, 1)  # DPM-Solver++ steps for the grid (at most diffusion.num_train_timesteps)
    sample_guidance: float = ranged(3.0, 0)  # classifier-free guidance scale for the grid


@dataclass
class GANConfig:
    noise_dim: int = ranged(100, 1)  # z ~ N(0, I)
    text_projection: int = ranged(128, 1)  # the sentence embedding is projected to this many features (Reed: 128)
    generator_channels: int = ranged(64, 1)  # width of the generator's last block; doubles per level down
    discriminator_channels: int = ranged(64, 1)  # width of the discriminator's first block; doubles per level down
    spectral_norm: bool = False  # the discriminator's layers spectrally normalized, without BatchNorm (SN-GAN:
    # its Lipschitz constant bounded, so its gradients cannot overwhelm the generator)


@dataclass
class GANTrainConfig(TrainConfig):
    steps: int = ranged(20000, 1)  # optimizer steps (each: one discriminator and one generator update)
    batch_size: int = ranged(64, 2)  # images per step (at least 2: the mismatched captions come from the batch)
    lr: float = ranged(2e-4, above=0)  # Adam, the generator (and the discriminator unless discriminator_lr)
    discriminator_lr: float | None = ranged(None, above=0)  # Adam, the discriminator; None = lr (TTUR: 2-4× lr)
    beta1: float = ranged(0.5, 0, below=1)  # Adam β1 (DCGAN)
    label_smoothing: float = ranged(0.0, 0, below=0.5)  # one-sided: real pairs' target is 1 − this (Salimans 2016: 0.1)
    interpolation_weight: float = ranged(1.0, 0)  # GAN-INT: generator term on embeddings halfway between captions
    captions_per_image: int | None = ranged(None, 1)  # train on the first K captions of each image (None = all)
    sample_prompts: tuple[str, ...] = ()  # prompts of the sample grid; () = first captions of 8 held-out images
    sample_seed: int = seed_field()


@dataclass
class TransformerConfig:
    conditioning: Literal["stream", "cross"] = "stream"  # "stream": DALL-E's one sequence [caption tokens ; image
    # tokens], its own text embeddings; "cross": image tokens only, cross-attending to the frozen encoder's states
    width: int = ranged(256, 1)  # channels of every token (the model dimension)
    layers: int = ranged(6, 1)  # blocks of causal self-attention (cross: + cross-attention to the text), MLP
    heads: int = 4  # attention heads; must divide width
    pooled_text: bool = True  # cross: add the caption's sentence embedding to every position (unet.pooled_text)
    text_loss_weight: float = ranged(0.125, 0, below=1)  # stream: the caption's share of the loss (DALL-E: 1/8)


@dataclass
class PixelCNNConfig:
    width: int = ranged(128, 1)  # channels of both stacks
    layers: int = ranged(8, 1)  # gated layers after the first (masked 'A') layer
    kernel_size: int = ranged(5, 3)  # odd: the vertical stack sees kernel_size // 2 rows above, the horizontal as
    # many codes to the left


@dataclass
class TokenPriorTrainConfig(TrainConfig):
    """How a prior over image tokens trains (the transformer's and the PixelCNN's)."""

    steps: int = ranged(20000, 1)  # optimizer steps
    batch_size: int = ranged(32, 1)  # images (token sequences) per step
    lr: float = ranged(5e-4, above=0)  # AdamW peak learning rate
    lr_schedule: LRSchedule = "cosine"  # "cosine" (to 0 at `steps`) or "constant", after warm-up
    warmup_steps: int = ranged(200, 0)  # linear warm-up
    weight_decay: float = ranged(0.01, 0)  # AdamW
    grad_clip: float = ranged(1.0, above=0)  # max global gradient norm
    cfg_dropout: float = ranged(0.1, 0, below=1)  # probability that a caption is replaced by "" (for guidance)
    captions_per_image: int | None = ranged(None, 1)  # train on the first K captions of each image (None = all)
    sample_prompts: tuple[str, ...] = ()  # prompts of the sample grid; () = first captions of 8 held-out images
    sample_seed: int = seed_field()
    sample_guidance: float = ranged(3.0, 0)  # classifier-free guidance on the logits for the grid


@dataclass
class ClipConfig:
    """A CLIP-style dual encoder: a ViT trained from scratch, the text encoder's top layers, projections."""

    patch_size: int = ranged(8, 1)  # the ViT's patches: (image_size / patch_size)² tokens
    width: int = ranged(192, 1)  # the ViT's hidden size
    layers: int = ranged(6, 1)  # ViT blocks
    heads: int = 3  # ViT attention heads; must divide width
    projection_dim: int = ranged(256, 1)  # the shared embedding space
    text_trainable_layers: int = ranged(2, 0)  # the text tower's top layers (and pooler) trained; the rest frozen
    # (LiT: a fully locked text tower works badly)


@dataclass
class ClipTrainConfig(TrainConfig):
    steps: int = ranged(3000, 1)  # optimizer steps
    batch_size: int = ranged(128, 2)  # image-caption pairs per step: each pair's negatives are the batch's others
    lr: float = ranged(5e-4, above=0)  # AdamW peak LR of the image tower and the projections
    text_lr: float = ranged(5e-5, above=0)  # AdamW peak LR of the text tower's trained layers
    warmup_steps: int = ranged(200, 0)  # linear warm-up, then cosine to 0
    weight_decay: float = ranged(0.1, 0)  # AdamW
    captions_per_image: int | None = ranged(None, 1)  # train on the first K captions of each image (None = all)


@dataclass
class DistillTrainConfig(TrainConfig):
    """How `t2i distill` trains a few-step student (latent consistency distillation, LCM)."""

    steps: int = ranged(1500, 1)  # optimizer steps
    batch_size: int = ranged(32, 1)  # latents per step
    lr: float = ranged(1e-4, above=0)  # AdamW peak learning rate (warm-up, then constant)
    warmup_steps: int = ranged(50, 0)  # linear warm-up
    weight_decay: float = ranged(0.0, 0)  # AdamW
    grad_clip: float = ranged(1.0, above=0)  # max global gradient norm
    captions_per_image: int | None = ranged(None, 1)  # train on the first K captions of each image (None = all)
    solver_steps: int = ranged(50, 2)  # the teacher's ODE grid: one teacher step skips T / solver_steps timesteps
    # (LCM: 50, k = 20); the student's LCMScheduler's original_inference_steps
    guidance_min: float = ranged(2.0, 1)  # g ~ U[guidance_min, guidance_max] per sample: the teacher's guidance,
    guidance_max: float = ranged(8.0, 1)  # given to the student as its w-embedding (w = g − 1)
    guidance_embedding_dim: int = ranged(256, 2)  # the w-embedding's width (diffusers' time_cond_proj_dim); even
    target_decay: float = ranged(0.95, 0, below=1)  # the target network θ⁻ ← μ θ⁻ + (1 − μ) θ (LCM: 0.95)
    huber_c: float = ranged(0.001, above=0)  # pseudo-Huber loss √(d² + c²) − c
    mixed_precision: Precision = "auto"  # "auto" (bf16 where the GPU or CPU runs it natively, else fp32), "no", ...
    sample_prompts: tuple[str, ...] = ()  # prompts of the sample grid; () = first captions of 8 held-out images
    sample_seed: int = seed_field()
    sample_steps: tuple[int, ...] = (1, 2, 4)  # the student's steps in the grid's rows (under the teacher's row)
    sample_guidance: float = ranged(5.0, 1)  # the guidance given to the student in the grid


@dataclass
class DistillConfig:
    """`t2i distill`: a few-step student of a latent-diffusion teacher (whose data, text and caption sections it
    trains with). Not a family: the student is a latent-diffusion model folder."""

    distillation: DistillTrainConfig = field(default_factory=DistillTrainConfig)


@dataclass
class Config:
    """The sections every family's config has; each family's own class (FAMILY_CONFIGS) adds its sections."""

    family: FamilyName = "latent-diffusion"  # the model family this config trains (one of t2i.families.FAMILIES)
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    caption_augment: CaptionAugmentConfig = field(default_factory=CaptionAugmentConfig)


@dataclass
class PixelDiffusionConfig(Config):
    """DDPM: a UNet denoising the pixels themselves."""

    family: FamilyName = "pixel-diffusion"
    unet: UNetConfig = field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    diffusion_training: DiffusionTrainConfig = field(default_factory=DiffusionTrainConfig)


@dataclass
class LatentDiffusionConfig(PixelDiffusionConfig):
    """Stable Diffusion: the same UNet denoising the latents of an autoencoder trained first."""

    family: FamilyName = "latent-diffusion"
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    autoencoder_training: AutoencoderTrainConfig = field(default_factory=AutoencoderTrainConfig)


@dataclass
class UpsamplerConfig:
    low_resolution: int = ranged(32, 4)  # the base model's image size: its images, upsampled (bicubic) to
    # data.image_size, are the upsampler's condition
    max_noise_level: int = ranged(250, 0)  # training noises the condition to a level s ~ U{0..max} of diffusion's
    # schedule, given to the UNet as a class label (noise-conditioning augmentation; diffusers' x4 upscaler: 350)


@dataclass
class CascadeConfig(PixelDiffusionConfig):
    """Low resolution + upsample: a pixel-diffusion base model at upsampler.low_resolution (its own folder), then
    a text-conditioned diffusion upsampler to data.image_size (this config's unet, diffusion, diffusion_training)."""

    family: FamilyName = "cascade"
    upsampler: UpsamplerConfig = field(default_factory=UpsamplerConfig)


@dataclass
class GANFamilyConfig(Config):
    """GAN-CLS: a text-conditional DCGAN."""

    family: FamilyName = "gan"
    gan: GANConfig = field(default_factory=GANConfig)
    gan_training: GANTrainConfig = field(default_factory=GANTrainConfig)


@dataclass
class TokenFamilyConfig(Config):
    """A VQ autoencoder (or a dVAE) first, then a prior over its image tokens."""

    autoencoder: AutoencoderConfig = field(default_factory=lambda: AutoencoderConfig(kind="vq"))
    autoencoder_training: AutoencoderTrainConfig = field(default_factory=AutoencoderTrainConfig)


@dataclass
class VQTransformerConfig(TokenFamilyConfig):
    """DALL-E's idea: a transformer over the image tokens."""

    family: FamilyName = "vq-transformer"
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    transformer_training: TokenPriorTrainConfig = field(default_factory=TokenPriorTrainConfig)


@dataclass
class PixelCNNFamilyConfig(TokenFamilyConfig):
    """VQ-VAE's generator: a gated PixelCNN over the code grid."""

    family: FamilyName = "pixelcnn"
    pixelcnn: PixelCNNConfig = field(default_factory=PixelCNNConfig)
    pixelcnn_training: TokenPriorTrainConfig = field(default_factory=TokenPriorTrainConfig)


@dataclass
class ContrastiveConfig:
    """`t2i train clip`: the images and their captions, the text tower's start (text.path; None: the packaged
    MiniLM) and length (text.max_tokens), the dual encoder, its training. Not a family: it draws nothing."""

    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    caption_augment: CaptionAugmentConfig = field(default_factory=CaptionAugmentConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    clip_training: ClipTrainConfig = field(default_factory=ClipTrainConfig)


FAMILY_CONFIGS = {
    "latent-diffusion": LatentDiffusionConfig,
    "pixel-diffusion": PixelDiffusionConfig,
    "cascade": CascadeConfig,
    "gan": GANFamilyConfig,
    "vq-transformer": VQTransformerConfig,
    "pixelcnn": PixelCNNFamilyConfig,
}
TOKEN_FAMILIES = ("vq-transformer", "pixelcnn")  # the priors over an autoencoder's image tokens
assert set(FAMILY_CONFIGS) == set(FAMILIES), "every family of t2i.families has its config class here"


def family_config(family: str = "latent-diffusion", **sections) -> Config:
    """A family's config with its defaults (sections given by keyword replace them)."""
    if family not in FAMILY_CONFIGS:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {_shown(family)}")
    return FAMILY_CONFIGS[family](family=family, **sections)


LR_SCHEDULES = {
    "cosine": "cosine",
    "constant": "constant_with_warmup",
}  # lr_schedule -> diffusers' name (warm-up incl.)


def diffusers_schedule_name(lr_schedule: str, section: str) -> str:
    """The `diffusers.optimization.get_scheduler` name for an `lr_schedule` field (warm-up included)."""
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"{section}.lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    return LR_SCHEDULES[lr_schedule]


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxstring, _SHOWN.maxother = 2, 4, 4, 80, 80


def _shown(value) -> str:
    """A value as an error message shows it: cut short, whatever its size."""
    return _SHOWN.repr(value)


_TYPES = {  # a field's type -> (does a value have it, how to say it)
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _typed(value, hint, where: str):
    """`value` checked against a field's type (YAML gives ints for floats and lists for tuples; a Literal's choices
    are `validate`'s)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        hint = type(args[0])
    if origin in (typing.Union, types.UnionType):  # X | None
        return None if value is None else _typed(value, next(a for a in args if a is not type(None)), where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {_shown(value)}")
        if args[-1] is Ellipsis:
            return tuple(_typed(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_typed(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{where}: expected a number, got {_shown(value)}") from None
    ok, expected = _TYPES[hint]
    if not ok(value):
        raise ValueError(f"{where}: expected {expected}, got {_shown(value)}")
    return float(value) if hint is float else value


def from_dict(cls, values: dict, where: str):
    """A dataclass from a mapping (a YAML or JSON file's), every value type-checked; `where` names the source."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {_shown(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {_shown(sorted(map(str, unknown)))}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, f"{where}.{name}")
        else:
            kwargs[name] = _typed(value, hint, f"{where}.{name}")
    return cls(**kwargs)


def _requirement(meta: dict, hint) -> str:
    """How a ranged field's rule reads: ">= 1", "between 8 and 4096", "in [0, 1)", "> 0", with "or null"."""
    optional = type(None) in typing.get_args(hint)
    whole = (next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint) is int
    low, high, above, below = (meta[k] for k in ("low", "high", "above", "below"))
    if low is not None and high is not None:
        text = f"between {low} and {high}" if whole else f"in [{low}, {high}]"
    elif low is not None and below is not None:
        text = f"in [{low}, {below})"
    elif low is not None:
        text = f">= {low}"
    else:
        text = f"> {above}"
    return f"must be {text}" + (" or null" if optional else "")


def _in_range(value, meta: dict) -> bool:
    low, high, above, below = (meta[k] for k in ("low", "high", "above", "below"))
    return (
        (low is None or value >= low)
        and (high is None or value <= high)
        and (above is None or value > above)
        and (below is None or value < below)
    )


def _field_problems(section: str, values) -> list[tuple[str, str, object]]:
    """(field, requirement, value) of every field of a section outside its declared range or choices."""
    problems, hints = [], typing.get_type_hints(type(values))
    for f in dataclasses.fields(values):
        value, hint, where = getattr(values, f.name), hints[f.name], f"{section}.{f.name}".strip(".")
        choices = typing.get_args(hint) if typing.get_origin(hint) is Literal else ()
        if choices and value not in choices:
            said = " or ".join(map(repr, choices)) if len(choices) == 2 else f"one of {list(choices)}"
            problems.append((where, f"must be {said}", value))
        elif "low" in f.metadata and value is not None and not _in_range(value, f.metadata):
            problems.append((where, _requirement(f.metadata, hint), value))
    return problems


def _consistency_rules(config: Config) -> list[tuple[str, bool, str]]:
    """The rules between fields (and each family's own): (field, holds, requirement)."""
    if hasattr(config, "distillation"):
        return _distill_rules(config.distillation)
    d, tx, family = config.data, config.text, getattr(config, "family", None)  # `t2i train clip`: none
    fractions = d.split_fractions
    rules = [
        (
            "data.split_fractions",
            all(x >= 0 for x in fractions) and abs(sum(fractions) - 1) < 1e-6 and fractions[0] > 0,
            "must be 3 fractions >= 0 that sum to 1, the first (train) > 0",
        ),
        (
            "text.scratch_heads",
            tx.scratch_heads >= 1 and tx.scratch_width % tx.scratch_heads == 0,
            "must be >= 1 and divide text.scratch_width",
        ),
    ]
    if hasattr(config, "autoencoder"):
        a = config.autoencoder
        rules += [
            (
                "autoencoder.channels",
                2 <= len(a.channels) <= 5 and 0 < min(a.channels) <= max(a.channels) <= MAX_WIDTH,
                f"must list 2 to 5 widths from 1 to {MAX_WIDTH} (downsampling f = 2, 4, 8 or 16)",
            ),
            (
                "autoencoder.norm_num_groups",
                a.norm_num_groups > 0 and all(c % a.norm_num_groups == 0 for c in a.channels),
                "must divide every entry of autoencoder.channels",
            ),
        ]
    if hasattr(config, "clip"):
        c = config.clip
        rules += [
            ("clip.heads", c.heads >= 1 and c.width % c.heads == 0, "must be >= 1 and divide clip.width"),
            ("clip.patch_size", d.image_size % c.patch_size == 0, "must divide data.image_size"),
        ]
    if hasattr(config, "upsampler"):
        up = config.upsampler
        rules += [
            (
                "upsampler.low_resolution",
                up.low_resolution < d.image_size and d.image_size % up.low_resolution == 0,
                f"must divide data.image_size ({d.image_size}) and be smaller",
            ),
            (
                "upsampler.max_noise_level",
                up.max_noise_level < config.diffusion.num_train_timesteps,
                "must be below diffusion.num_train_timesteps",
            ),
            (
                "unet.pooled_text",
                not config.unet.pooled_text,
                "must be false (the class label carries the noise level)",
            ),
        ]
    if hasattr(config, "unet"):
        rules += _unet_rules(config)
    if family == "gan":
        size = d.image_size
        rules += [
            ("data.image_size", size >= 16 and size & (size - 1) == 0, "must be a power of 2 >= 16 for the gan family"),
            ("text.kind", tx.kind == "pretrained", "must be 'pretrained' for the gan family (a frozen encoder)"),
        ]
    if family == "latent-diffusion" and hasattr(config, "autoencoder"):
        kind = config.autoencoder.kind
        rules.append(("autoencoder.kind", kind != "dvae", "must be 'kl' or 'vq' for latent diffusion (dvae: tokens)"))
    if family in TOKEN_FAMILIES:
        rules += [
            (
                "autoencoder.kind",
                config.autoencoder.kind in ("vq", "dvae"),
                f"must be 'vq' or 'dvae' for the {config.family} family (its tokens are codes)",
            ),
            (
                "text.kind",
                tx.kind == "pretrained",
                f"must be 'pretrained' for the {config.family} family (a frozen encoder)",
            ),
        ]
    if family == "vq-transformer":
        tr = config.transformer
        rules.append(
            (
                "transformer.heads",
                tr.heads >= 1 and tr.width % tr.heads == 0,
                "must be >= 1 and divide transformer.width",
            )
        )
    return rules


def _distill_rules(tc: DistillTrainConfig) -> list[tuple[str, bool, str]]:
    return [
        ("distillation.guidance_max", tc.guidance_max >= tc.guidance_min, "must be >= distillation.guidance_min"),
        ("distillation.guidance_embedding_dim", tc.guidance_embedding_dim % 2 == 0, "must be even"),
        (
            "distillation.sample_steps",
            len(tc.sample_steps) > 0 and all(1 <= n <= tc.solver_steps for n in tc.sample_steps),
            "must list step counts from 1 to distillation.solver_steps",
        ),
    ]


def _unet_rules(config: Config) -> list[tuple[str, bool, str]]:
    """The diffusion families': the UNet's widths, heads and groups, the image size its downsampling needs, β."""
    u, df, d = config.unet, config.diffusion, config.data
    unet_factor = 2 ** (len(u.channels) - 1) if u.channels else 1
    f, why = 1, f"the UNet's {unet_factor}x downsampling"
    if hasattr(config, "autoencoder"):
        factor = config.autoencoder.downsample_factor
        f, why = factor, f"autoencoder f={factor} times the UNet's {unet_factor}x downsampling"
    return [
        (
            "unet.channels",
            len(u.channels) >= 1 and 0 < min(u.channels) and max(u.channels) <= MAX_WIDTH,
            f"must list widths from 1 to {MAX_WIDTH}",
        ),
        ("unet.attention", len(u.attention) == len(u.channels), "must have one entry per unet.channels entry"),
        (
            "unet.attention_head_dim",
            u.attention_head_dim >= 1 and all(c % u.attention_head_dim == 0 for c in u.channels),
            "must be >= 1 and divide every entry of unet.channels",
        ),
        (
            "unet.norm_num_groups",
            u.norm_num_groups > 0 and all(c % u.norm_num_groups == 0 for c in u.channels),
            "must divide every entry of unet.channels",
        ),
        ("data.image_size", d.image_size % (f * unet_factor) == 0, f"must be a multiple of {f * unet_factor} ({why})"),
        ("diffusion.beta_end", 0 < df.beta_start < df.beta_end < 1, "must satisfy 0 < beta_start < beta_end < 1"),
        (
            "diffusion_training.sample_steps",
            config.diffusion_training.sample_steps <= df.num_train_timesteps,
            "must be between 1 and diffusion.num_train_timesteps",
        ),
    ]


def validate(config: Config) -> None:
    """Every field's declared range or choices (section by section), then the rules between fields; a ValueError
    naming the first field that fails."""
    problems = _field_problems("", config)  # the family
    for f in dataclasses.fields(config):
        if dataclasses.is_dataclass(getattr(config, f.name)):
            problems += _field_problems(f.name, getattr(config, f.name))
    problems += [(name, requirement, None) for name, ok, requirement in _consistency_rules(config) if not ok]
    if problems:
        name, requirement, value = problems[0]
        if value is None:
            section, _, field_name = name.partition(".")
            value = getattr(getattr(config, section), field_name)
        raise ValueError(f"{name} {requirement}, got {_shown(value)}")


def require_family(config: Config, family: str) -> None:
    """A ValueError when a trainer is given another family's config (each family has its own command)."""
    if config.family != family:
        commands = {
            "latent-diffusion": "autoencoder` then `t2i train diffusion",
            "cascade": "pixel-diffusion` (the base) then `t2i train upsampler",
        }
        command = commands.get(config.family, "prior" if config.family in TOKEN_FAMILIES else config.family)
        raise ValueError(f"this config is for the {config.family} family: train it with `t2i train {command}`")


def load_config(path: str | Path) -> Config:
    """Read a YAML config; missing sections and fields take their defaults, unknown ones are an error.

    Every field's type and range is checked here, so a bad value fails before anything runs."""
    path = Path(path)
    values = read_config_yaml(path)
    config = from_dict(_family_class(values, path), _own_sections(values, path), str(path))
    try:
        validate(config)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return config


def load_clip_config(path: str | Path) -> ContrastiveConfig:
    """Read `t2i train clip`'s YAML config; checked as load_config checks a family's."""
    return _load_checked(ContrastiveConfig, path)


def load_distill_config(path: str | Path | None) -> DistillConfig:
    """Read `t2i distill`'s YAML config (None: the defaults); checked as load_config checks a family's."""
    return DistillConfig() if path is None else _load_checked(DistillConfig, path)


def _load_checked(cls, path: str | Path):
    path = Path(path)
    config = from_dict(cls, read_config_yaml(path), str(path))
    try:
        validate(config)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return config


def _family_class(values, path: Path) -> type[Config]:
    family = values.get("family", "latent-diffusion") if isinstance(values, dict) else None
    if family not in FAMILY_CONFIGS:
        raise ValueError(f"{path}: family must be one of {list(FAMILIES)}, got {_shown(family)}")
    return FAMILY_CONFIGS[family]


def _own_sections(values: dict, path: Path) -> dict:
    """The values without the sections of other families (configs written before each family had its own class
    hold every section): those are left out with a note; a section no family has stays, an error for from_dict."""
    own = {f.name for f in dataclasses.fields(_family_class(values, path))}
    others = {f.name for cls in FAMILY_CONFIGS.values() for f in dataclasses.fields(cls)} - own
    ignored = sorted(set(values) & others)
    if ignored:
        log.info("%s: ignored the sections of other families: %s", path, ", ".join(ignored))
    return {k: v for k, v in values.items() if k not in ignored}


def saved_split_fractions(model_dir: str | Path) -> tuple[float, float, float]:
    """The train/val/test fractions a model folder was trained with (its t2i_config.yaml), so that evaluation
    scores it on images it did not train on; the defaults for a folder without a saved config."""
    path = Path(model_dir) / "t2i_config.yaml"
    return load_config(path).data.split_fractions if path.is_file() else DataConfig().split_fractions


def to_dict(config) -> dict:
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in dataclasses.asdict(config).items()
        if not isinstance(v, dict)
    } | {k: to_dict(getattr(config, k)) for k, v in dataclasses.asdict(config).items() if isinstance(v, dict)}


def save_config(config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
