"""DALL-E's discrete VAE: K logits per latent position, a Gumbel-softmax relaxation in training, argmax tokens after.

    logits  l = E(x)                              (B, K, h, w): a distribution over the K codes at each position
    train   y = softmax((l + g) / τ), g ~ Gumbel    a soft one-hot, τ annealed 1 → 1/16 (hard as τ → 0)
            z = Σ_k y_k e_k                         the mix of the K learned codebook vectors e_k
            x̂ = D(z) ;  L = rec(x, x̂) + β KL(softmax(l) ‖ U(K))   (β warmed up from 0)
    tokens  t = argmax_k l_k ;  x̂ = D(e_t)

The encoder and decoder are diffusers' (the blocks AutoencoderKL and VQModel are made of); the class is a
diffusers ModelMixin, so `save_pretrained` / `from_pretrained` write and read the usual folder. `encode` returns
the codebook vectors of the argmax codes as `latents` (VQModel's field), so the latent cache stores them and the
tokens are read back from them exactly (`nearest_codes`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import Decoder, DecoderOutput, Encoder
from diffusers.models.autoencoders.vq_model import VQEncoderOutput
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class DiscreteVAE(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",),
        up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",),
        block_out_channels: tuple[int, ...] = (64,),
        layers_per_block: int = 1,
        latent_channels: int = 4,
        norm_num_groups: int = 32,
        sample_size: int = 64,
        num_vq_embeddings: int = 512,  # K, the codebook size (VQModel's name, so the token code reads one field)
        mid_block_add_attention: bool = True,
        scaling_factor: float = 1.0,
    ):
        super().__init__()
        blocks = dict(
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            mid_block_add_attention=mid_block_add_attention,
        )
        self.encoder = Encoder(in_channels, num_vq_embeddings, down_block_types, double_z=False, **blocks)
        self.codebook = nn.Embedding(num_vq_embeddings, latent_channels)
        self.decoder = Decoder(latent_channels, out_channels, up_block_types, **blocks)

    def forward(self, x: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂, logits): the decoder of a Gumbel-softmax sample at temperature τ (global RNG)."""
        logits = self.encoder(x)
        soft = F.gumbel_softmax(logits.float(), tau=tau, dim=1)  # y = softmax((l + g) / τ) over the K codes
        z = torch.einsum("bkhw,kc->bchw", soft.to(logits.dtype), self.codebook.weight.to(logits.dtype))
        return self.decoder(z), logits

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """t = argmax_k l_k: (B, h, w) code indices."""
        return self.encoder(x).argmax(1)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """e_t: (B, h, w) code indices -> (B, C, h, w) codebook vectors."""
        return self.codebook(tokens).permute(0, 3, 1, 2).contiguous()

    def encode(self, x: torch.Tensor) -> VQEncoderOutput:
        """The codebook vectors of the argmax codes, as `latents`."""
        return VQEncoderOutput(latents=self.embed(self.tokens(x)))

    def decode(self, z: torch.Tensor) -> DecoderOutput:
        return DecoderOutput(sample=self.decoder(z))

    def nearest_codes(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, h·w) indices of the nearest codebook vectors (exact for `encode`'s latents)."""
        flat = latents.permute(0, 2, 3, 1).flatten(0, 2).float()
        return torch.cdist(flat, self.codebook.weight.float()).argmin(1).view(len(latents), -1)


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(q ‖ U(K)) = Σ_k q_k log q_k + log K with q = softmax(l), summed over positions, averaged over images."""
    log_q = logits.float().log_softmax(1)
    return ((log_q.exp() * log_q).sum(1) + math.log(logits.shape[1])).flatten(1).sum(1).mean()


def gumbel_temperature(step: int, start: float, end: float, anneal_steps: int) -> float:
    """τ from `start` to `end` over `anneal_steps` steps, on a cosine in log τ (DALL-E: 1 → 1/16), then `end`."""
    progress = min(step / max(anneal_steps, 1), 1.0)
    return math.exp(math.log(end) + (math.log(start) - math.log(end)) * 0.5 * (1 + math.cos(math.pi * progress)))
