"""The denoiser εθ(z_t, t, τθ(y)): a diffusers UNet2DConditionModel built from a UNetConfig."""

from __future__ import annotations

import math

import torch
from diffusers import UNet2DConditionModel

from t2i.config import UNetConfig


def build_unet(
    config: UNetConfig, latent_channels: int, latent_size: int, cross_attention_dim: int, upsampler_levels: int = 0
):
    """An untrained UNet; cross-attention width = the text encoder's hidden size. `upsampler_levels` > 0: a
    cascade's upsampler, which reads [x_t ; its condition] (twice the channels) and takes the condition's noise
    level as a class label (one learned embedding per level, as diffusers' x4 upscaler). The sentence embedding's
    projection (pooled_text) starts at zero, so a new UNet starts as one without it and learns how much to use.
    With sentence_tokens the sentence embedding also becomes 10 context tokens ahead of the caption's (diffusers'
    text_image_proj, Kandinsky 2.1's way in for its image embedding; both through a learned linear layer)."""
    if len(config.channels) != len(config.attention):
        raise ValueError("unet.channels and unet.attention need one entry per level")
    if any(c % config.norm_num_groups or c % config.attention_head_dim for c in config.channels):
        raise ValueError("unet.norm_num_groups and unet.attention_head_dim must divide every entry of unet.channels")
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in config.attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.attention))
    unet = UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=latent_channels * (2 if upsampler_levels else 1),
        out_channels=latent_channels,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=tuple(config.channels),
        layers_per_block=config.layers_per_block,
        attention_head_dim=tuple(c // config.attention_head_dim for c in config.channels),  # heads per level
        norm_num_groups=config.norm_num_groups,
        cross_attention_dim=cross_attention_dim,
        # pooled_text: class_labels = the sentence embedding, through Linear-SiLU-Linear, + the time embedding
        class_embed_type="projection" if config.pooled_text else None,
        projection_class_embeddings_input_dim=cross_attention_dim if config.pooled_text else None,
        num_class_embeds=upsampler_levels or None,  # an upsampler's: class_labels = the noise level s
        # sentence_tokens: context = [W_s s(y) as 10 tokens; W_t τθ(y)]
        encoder_hid_dim_type="text_image_proj" if config.sentence_tokens else None,
        encoder_hid_dim=cross_attention_dim if config.sentence_tokens else None,
    )
    if config.pooled_text:
        torch.nn.init.zeros_(unet.class_embedding.linear_2.weight)
        torch.nn.init.zeros_(unet.class_embedding.linear_2.bias)
    return unet


def takes_pooled_text(unet) -> bool:
    """Whether a UNet adds the sentence embedding to its time embedding (read from its own config, so model
    folders written before `pooled_text` existed keep working)."""
    return unet.config.class_embed_type == "projection"


def sentence_token_count(unet) -> int:
    """How many context tokens ahead of the caption's the UNet makes of the sentence embedding (0: none)."""
    return unet.encoder_hid_proj.num_image_text_embeds if unet.config.encoder_hid_dim_type == "text_image_proj" else 0


def takes_guidance(unet) -> bool:
    """Whether a UNet takes the guidance scale as an input (a distilled student, t2i.distill: LCM's w-embedding)."""
    return unet.config.time_cond_proj_dim is not None


def guidance_embedding(guidance: torch.Tensor, dim: int) -> torch.Tensor:
    """A distilled student's guidance input: w = g − 1 (ε_c + w (ε_c − ε_u) is guidance g), embedded as LCM's
    pipeline does, sin/cos of 1000·w at dim/2 frequencies 10000^(−k / (dim/2 − 1)); (batch, dim)."""
    w = (guidance.float() - 1) * 1000
    half = dim // 2
    frequencies = torch.exp(torch.arange(half, device=w.device) * -(math.log(10000.0) / (half - 1)))
    angles = w[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], 1)


def denoise(unet, z_t: torch.Tensor, t, condition: dict[str, torch.Tensor]) -> torch.Tensor:
    """εθ(z_t, t, τθ(y)) for the text inputs of t2i.text.unet_condition, passed as diffusers' UNet takes them (an
    upsampler's condition too: `low_resolution`, and its noise level as `class_labels`; a distilled student's
    guidance_embedding as `timestep_cond`)."""
    sentence = {"image_embeds": condition["image_embeds"]} if "image_embeds" in condition else None
    if "low_resolution" in condition:  # a cascade's upsampler reads [x_t ; up(x_lr) noised to level s]
        z_t = torch.cat([z_t, condition["low_resolution"].to(z_t.dtype)], 1)
    return unet(
        z_t,
        t,
        encoder_hidden_states=condition["encoder_hidden_states"],
        class_labels=condition.get("class_labels"),
        added_cond_kwargs=sentence,
        timestep_cond=condition.get("timestep_cond"),
    ).sample
