"""Configs: dataclasses with documented fields, one YAML file per preset (configs/*.yaml), saved next
to every model they produce."""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from t2i.families import FAMILIES
from t2i.yaml_file import read_config_yaml

PRECISIONS = ("auto", "no", "bf16", "fp16")  # mixed_precision: "auto" is t2i.devices.resolve_precision's


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
    mixed_precision: str = (
        "auto"  # "auto" (bf16 where the GPU or CPU runs it natively, else fp32), "no", "bf16", "fp16"
    )
    compile: bool = False  # torch.compile the autoencoder (GPUs; compiling takes a minute or two)
    channels_last: bool = False  # NHWC memory layout for the convolutions (GPUs)
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
    pooled_text: bool = True  # add the caption's sentence embedding (mean of the text encoder's states) to the
    # time embedding, as SDXL adds its pooled text embedding: a condition that paraphrases share
    sentence_tokens: bool = False  # the sentence embedding also as 10 extra context tokens that cross-attention
    # reads at every resolution (diffusers' text_image_proj); token dropout never hides them


@dataclass
class DiffusionConfig:
    num_train_timesteps: int = 1000  # T
    beta_schedule: str = "scaled_linear"  # SD: β_t = (linspace(√β_start, √β_end, T))²; DDPM: "linear"
    beta_start: float = 0.00085  # β_1 (DDPM in pixel space: 1e-4)
    beta_end: float = 0.012  # β_T (DDPM in pixel space: 0.02)
    prediction_type: str = "epsilon"  # "epsilon" (ε) or "v_prediction" (v = √ᾱ ε − √(1−ᾱ) z0)
    clip_sample: bool = False  # samplers clip the predicted x0 to [-1, 1] (DDPM's choice in pixel space)


@dataclass
class CaptionAugmentConfig:
    """Training-time caption rewrites (t2i.data.augment), for every family that takes text."""

    rewrites: int = 1  # rewrites of each training caption, drawn as often as the caption (0: off); each is encoded
    # once into the text cache, so caching takes (1 + rewrites)× as long
    shuffle_clauses: bool = True  # a rewrite puts the caption's sentences in a random order
    drop_filler: float = 0.25  # ... and drops each filler word ("this", "the", "is", ...) with this probability
    face_shapes: bool = False  # ... or, for captions in the synthetic faces' phrase table, writes their attributes
    # in other sentence shapes, with any of each attribute's phrases (configs/demo.yaml: on)
    token_dropout: float = 0.1  # diffusion: each real token of a caption is hidden from cross-attention with this
    # probability in a training step (the sentence embedding stays the whole caption's: a reason to read it)
    sentence_only: float = 0.0  # diffusion with unet.pooled_text or sentence_tokens: the probability that a caption
    # reaches the UNet through its sentence embedding alone (cross-attention sees the empty caption), so that the
    # UNet learns to use it


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
    mixed_precision: str = (
        "auto"  # "auto" (bf16 where the GPU or CPU runs it natively, else fp32), "no", "bf16", "fp16"
    )
    compile: bool = False  # torch.compile the UNet (GPUs; compiling takes a minute or two)
    channels_last: bool = False  # NHWC memory layout for the convolutions (GPUs)
    seed: int = 0
    log_every: int = 20  # steps between logged scalars
    sample_every: int = 500  # steps between sample grids and loss plots
    checkpoint_every: int = 500  # steps between checkpoints
    keep_checkpoints: int = 3
    sample_prompts: tuple[str, ...] = ()  # prompts of the sample grid; () = first captions of 8 held-out images
    sample_seed: int = 0  # seed of the sample grid (fixed, so grids compare across steps)
    sample_steps: int = 20  # DPM-Solver++ steps for the grid
    sample_guidance: float = 3.0  # classifier-free guidance scale for the grid


@dataclass
class GANConfig:
    noise_dim: int = 100  # z ~ N(0, I)
    text_projection: int = 128  # the sentence embedding is projected to this many features (Reed et al.: 128)
    generator_channels: int = 64  # width of the generator's last (highest-resolution) block; doubles per level down
    discriminator_channels: int = 64  # width of the discriminator's first block; doubles per level down


@dataclass
class GANTrainConfig:
    steps: int = 20000  # optimizer steps (each: one discriminator and one generator update)
    batch_size: int = 64  # images per step
    lr: float = 2e-4  # Adam, both networks (DCGAN)
    beta1: float = 0.5  # Adam β1 (DCGAN)
    interpolation_weight: float = 1.0  # GAN-INT: generator term on embeddings halfway between two captions
    captions_per_image: int | None = None  # train on the first K captions of each image (None = all)
    seed: int = 0
    log_every: int = 20  # steps between logged scalars
    sample_every: int = 500  # steps between sample grids and loss plots
    checkpoint_every: int = 500  # steps between checkpoints
    keep_checkpoints: int = 3
    sample_prompts: tuple[str, ...] = ()  # prompts of the sample grid; () = first captions of 8 held-out images
    sample_seed: int = 0


@dataclass
class TransformerConfig:
    width: int = 256  # channels of every token (the model dimension)
    layers: int = 6  # blocks of causal self-attention, cross-attention to the text, MLP
    heads: int = 4  # attention heads; must divide width
    pooled_text: bool = True  # add the caption's sentence embedding to every position (the UNet's unet.pooled_text)


@dataclass
class TransformerTrainConfig:
    steps: int = 20000  # optimizer steps
    batch_size: int = 32  # images (token sequences) per step
    lr: float = 5e-4  # AdamW peak learning rate
    lr_schedule: str = "cosine"  # "cosine" (to 0 at `steps`) or "constant", after warm-up
    warmup_steps: int = 200  # linear warm-up
    weight_decay: float = 0.01  # AdamW
    grad_clip: float = 1.0  # max global gradient norm
    cfg_dropout: float = 0.1  # probability that a caption is replaced by "" (for classifier-free guidance)
    captions_per_image: int | None = None  # train on the first K captions of each image (None = all)
    seed: int = 0
    log_every: int = 20  # steps between logged scalars
    sample_every: int = 500  # steps between sample grids and loss plots
    checkpoint_every: int = 500  # steps between checkpoints
    keep_checkpoints: int = 3
    sample_prompts: tuple[str, ...] = ()  # prompts of the sample grid; () = first captions of 8 held-out images
    sample_seed: int = 0
    sample_guidance: float = 3.0  # classifier-free guidance on the logits for the grid


@dataclass
class Config:
    family: str = "latent-diffusion"  # the model family this config trains (one of FAMILIES)
    data: DataConfig = field(default_factory=DataConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    autoencoder_training: AutoencoderTrainConfig = field(default_factory=AutoencoderTrainConfig)
    text: TextConfig = field(default_factory=TextConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    diffusion_training: DiffusionTrainConfig = field(default_factory=DiffusionTrainConfig)
    caption_augment: CaptionAugmentConfig = field(default_factory=CaptionAugmentConfig)  # families that take text
    gan: GANConfig = field(default_factory=GANConfig)  # family gan only
    gan_training: GANTrainConfig = field(default_factory=GANTrainConfig)  # family gan only
    transformer: TransformerConfig = field(default_factory=TransformerConfig)  # family vq-transformer only
    transformer_training: TransformerTrainConfig = field(default_factory=TransformerTrainConfig)  # vq-transformer


LR_SCHEDULES = {
    "cosine": "cosine",
    "constant": "constant_with_warmup",
}  # lr_schedule -> diffusers' name (warm-up incl.)


def diffusers_schedule_name(lr_schedule: str, section: str) -> str:
    """The `diffusers.optimization.get_scheduler` name for an `lr_schedule` field (warm-up included)."""
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"{section}.lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    return LR_SCHEDULES[lr_schedule]


MAX_WIDTH = 4096  # bound on image sizes and channel widths: beyond it a model fails to build after minutes of setup
MAX_SEED = 2**32 - 1  # the largest seed numpy's and torch's generators both take
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
    """`value` checked against a field's type (YAML gives ints for floats and lists for tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
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


def validate(config: Config) -> None:
    """Range and consistency checks over every field; a ValueError naming the first field that fails."""
    d, a, at, tx, u, df, dt = (config.data, config.autoencoder, config.autoencoder_training, config.text,
                               config.unet, config.diffusion, config.diffusion_training)  # fmt: skip
    g, gt = config.gan, config.gan_training
    unet_factor = 2 ** (len(u.channels) - 1)
    if config.family == "latent-diffusion":
        f, why = (
            a.downsample_factor,
            f"autoencoder f={a.downsample_factor} times the UNet's {unet_factor}x downsampling",
        )
    else:  # pixel space (and a GAN, whose own rule is stricter): no autoencoder
        f, why = 1, f"the UNet's {unet_factor}x downsampling"
    rules = [
        ("family", config.family in FAMILIES, f"must be one of {list(FAMILIES)}"),
        ("data.image_size", 8 <= d.image_size <= MAX_WIDTH, f"must be between 8 and {MAX_WIDTH}"),
        (
            "data.split_fractions",
            all(x >= 0 for x in d.split_fractions)
            and abs(sum(d.split_fractions) - 1) < 1e-6
            and d.split_fractions[0] > 0,
            "must be 3 fractions >= 0 that sum to 1, the first (train) > 0",
        ),
        ("data.num_workers", 0 <= d.num_workers <= 256, "must be between 0 and 256"),
        ("autoencoder.kind", a.kind in ("kl", "vq"), "must be 'kl' or 'vq'"),
        (
            "autoencoder.channels",
            2 <= len(a.channels) <= 5 and 0 < min(a.channels) and max(a.channels) <= MAX_WIDTH,
            f"must list 2 to 5 widths from 1 to {MAX_WIDTH} (downsampling f = 2, 4, 8 or 16)",
        ),
        (
            "autoencoder.norm_num_groups",
            a.norm_num_groups > 0 and all(c % a.norm_num_groups == 0 for c in a.channels),
            "must divide every entry of autoencoder.channels",
        ),
        ("autoencoder.layers_per_block", a.layers_per_block >= 1, "must be >= 1"),
        ("autoencoder.latent_channels", 1 <= a.latent_channels <= MAX_WIDTH, f"must be between 1 and {MAX_WIDTH}"),
        ("autoencoder.num_vq_embeddings", a.num_vq_embeddings >= 2, "must be >= 2"),
        (
            "data.image_size",
            d.image_size % (f * unet_factor) == 0,
            f"must be a multiple of {f * unet_factor} ({why})",
        ),
        ("text.kind", tx.kind in ("pretrained", "scratch"), "must be 'pretrained' or 'scratch'"),
        ("text.max_tokens", 2 <= tx.max_tokens <= 512, "must be between 2 and 512"),
        (
            "text.scratch_heads",
            tx.scratch_heads >= 1 and tx.scratch_width % tx.scratch_heads == 0,
            "must be >= 1 and divide text.scratch_width",
        ),
        ("text.scratch_layers", tx.scratch_layers >= 1, "must be >= 1"),
        (
            "unet.channels",
            len(u.channels) >= 1 and 0 < min(u.channels) and max(u.channels) <= MAX_WIDTH,
            f"must list widths from 1 to {MAX_WIDTH}",
        ),
        ("unet.attention", len(u.attention) == len(u.channels), "must have one entry per unet.channels entry"),
        ("unet.layers_per_block", u.layers_per_block >= 1, "must be >= 1"),
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
        ("diffusion.num_train_timesteps", df.num_train_timesteps >= 2, "must be >= 2"),
        (
            "diffusion.beta_schedule",
            df.beta_schedule in ("scaled_linear", "linear"),
            "must be 'scaled_linear' or 'linear'",
        ),
        ("diffusion.beta_end", 0 < df.beta_start < df.beta_end < 1, "must satisfy 0 < beta_start < beta_end < 1"),
        (
            "diffusion.prediction_type",
            df.prediction_type in ("epsilon", "v_prediction"),
            "must be 'epsilon' or 'v_prediction'",
        ),
        ("diffusion_training.batch_size", dt.batch_size >= 1, "must be >= 1"),
        ("diffusion_training.grad_accum", dt.grad_accum >= 1, "must be >= 1"),
        ("diffusion_training.weight_decay", dt.weight_decay >= 0, "must be >= 0"),
        ("diffusion_training.grad_clip", dt.grad_clip > 0, "must be > 0"),
        ("diffusion_training.min_snr_gamma", dt.min_snr_gamma is None or dt.min_snr_gamma > 0, "must be > 0 or null"),
        (
            "diffusion_training.captions_per_image",
            dt.captions_per_image is None or dt.captions_per_image >= 1,
            "must be >= 1 or null",
        ),
        ("diffusion_training.cfg_dropout", 0 <= dt.cfg_dropout < 1, "must be in [0, 1)"),
        ("caption_augment.rewrites", 0 <= config.caption_augment.rewrites <= 16, "must be 0 to 16"),
        ("caption_augment.drop_filler", 0 <= config.caption_augment.drop_filler < 1, "must be in [0, 1)"),
        ("caption_augment.token_dropout", 0 <= config.caption_augment.token_dropout < 1, "must be in [0, 1)"),
        ("caption_augment.sentence_only", 0 <= config.caption_augment.sentence_only <= 1, "must be in [0, 1]"),
        ("diffusion_training.ema_decay", 0 <= dt.ema_decay <= 1, "must be in [0, 1]"),
        (
            "diffusion_training.sample_steps",
            1 <= dt.sample_steps <= df.num_train_timesteps,
            "must be between 1 and diffusion.num_train_timesteps",
        ),
        ("diffusion_training.sample_guidance", dt.sample_guidance >= 0, "must be >= 0"),
        ("autoencoder_training.batch_size", at.batch_size >= 1, "must be >= 1"),
        ("autoencoder_training.disc_start", at.disc_start >= 0, "must be >= 0"),
        ("autoencoder_training.disc_channels", at.disc_channels >= 1, "must be >= 1"),
        ("autoencoder_training.disc_layers", at.disc_layers >= 1, "must be >= 1"),
        ("autoencoder_training.scale_samples", at.scale_samples >= 1, "must be >= 1"),
    ]
    for section in ("autoencoder_training", "diffusion_training", "gan_training", "transformer_training"):
        for name in ("seed", "sample_seed"):
            value = getattr(getattr(config, section), name, 0)
            rules.append((f"{section}.{name}", 0 <= value <= MAX_SEED, f"must be between 0 and {MAX_SEED}"))
    if config.family == "gan":
        size = d.image_size
        rules += [
            ("data.image_size", size >= 16 and size & (size - 1) == 0, "must be a power of 2 >= 16 for the gan family"),
            ("text.kind", tx.kind == "pretrained", "must be 'pretrained' for the gan family (a frozen encoder)"),
            ("gan.noise_dim", g.noise_dim >= 1, "must be >= 1"),
            ("gan.text_projection", g.text_projection >= 1, "must be >= 1"),
            ("gan.generator_channels", g.generator_channels >= 1, "must be >= 1"),
            ("gan.discriminator_channels", g.discriminator_channels >= 1, "must be >= 1"),
            (
                "gan_training.batch_size",
                gt.batch_size >= 2,
                "must be >= 2 (the mismatched captions come from the batch)",
            ),
            ("gan_training.beta1", 0 <= gt.beta1 < 1, "must be in [0, 1)"),
            ("gan_training.interpolation_weight", gt.interpolation_weight >= 0, "must be >= 0"),
            (
                "gan_training.captions_per_image",
                gt.captions_per_image is None or gt.captions_per_image >= 1,
                "must be >= 1 or null",
            ),
        ]
    tr, trt = config.transformer, config.transformer_training
    if config.family == "vq-transformer":
        rules += [
            (
                "autoencoder.kind",
                a.kind == "vq",
                "must be 'vq' for the vq-transformer family (its tokens are VQ codes)",
            ),
            (
                "text.kind",
                tx.kind == "pretrained",
                "must be 'pretrained' for the vq-transformer family (a frozen encoder)",
            ),
            ("transformer.width", tr.width >= 1, "must be >= 1"),
            ("transformer.layers", tr.layers >= 1, "must be >= 1"),
            (
                "transformer.heads",
                tr.heads >= 1 and tr.width % tr.heads == 0,
                "must be >= 1 and divide transformer.width",
            ),
            ("transformer_training.batch_size", trt.batch_size >= 1, "must be >= 1"),
            ("transformer_training.weight_decay", trt.weight_decay >= 0, "must be >= 0"),
            ("transformer_training.grad_clip", trt.grad_clip > 0, "must be > 0"),
            ("transformer_training.cfg_dropout", 0 <= trt.cfg_dropout < 1, "must be in [0, 1)"),
            (
                "transformer_training.captions_per_image",
                trt.captions_per_image is None or trt.captions_per_image >= 1,
                "must be >= 1 or null",
            ),
            ("transformer_training.sample_guidance", trt.sample_guidance >= 0, "must be >= 0"),
        ]
    for section, tc in (
        ("autoencoder_training", at),
        ("diffusion_training", dt),
        ("gan_training", gt),
        ("transformer_training", trt),
    ):
        rules += [
            (f"{section}.steps", tc.steps >= 1, "must be >= 1"),
            (f"{section}.lr", tc.lr > 0, "must be > 0"),
            (f"{section}.log_every", tc.log_every >= 1, "must be >= 1"),
            (f"{section}.sample_every", tc.sample_every >= 1, "must be >= 1"),
            (f"{section}.checkpoint_every", tc.checkpoint_every >= 1, "must be >= 1"),
            (f"{section}.keep_checkpoints", tc.keep_checkpoints >= 1, "must be >= 1"),
        ]
    for section, tc in (("autoencoder_training", at), ("diffusion_training", dt), ("transformer_training", trt)):
        rules += [
            (f"{section}.warmup_steps", tc.warmup_steps >= 0, "must be >= 0"),
            (f"{section}.lr_schedule", tc.lr_schedule in LR_SCHEDULES, "must be 'cosine' or 'constant'"),
        ]
    rules += [
        (f"{section}.mixed_precision", tc.mixed_precision in PRECISIONS, f"must be one of {PRECISIONS}")
        for section, tc in (("autoencoder_training", at), ("diffusion_training", dt))
    ]
    weights = ("l1_weight", "l2_weight", "kl_weight", "vq_commitment", "lpips_weight", "disc_weight")
    rules += [(f"autoencoder_training.{w}", getattr(at, w) >= 0, "must be >= 0") for w in weights]
    for name, ok, requirement in rules:
        if not ok:
            section, _, field_name = name.partition(".")
            value = getattr(config, section) if not field_name else getattr(getattr(config, section), field_name)
            raise ValueError(f"{name} {requirement}, got {_shown(value)}")


def require_family(config: Config, family: str) -> None:
    """A ValueError when a trainer is given another family's config (each family has its own command)."""
    if config.family != family:
        command = "autoencoder` then `t2i train diffusion" if config.family == "latent-diffusion" else config.family
        raise ValueError(f"this config is for the {config.family} family: train it with `t2i train {command}`")


def load_config(path: str | Path) -> Config:
    """Read a YAML config; missing sections and fields take their defaults, unknown ones are an error.

    Every field's type and range is checked here, so a bad value fails before anything runs."""
    path = Path(path)
    values = read_config_yaml(path)
    config = from_dict(Config, values, str(path))
    try:
        validate(config)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return config


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
