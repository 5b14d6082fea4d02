"""Image tokens: a VQ autoencoder's (or a discrete VAE's) code index at every latent position of every image and
its flip.

    CACHE/ (a latent cache, t2i.autoencoder.cache: the pre-quantization latents, tied to the autoencoder)
    CACHE/tokens.safetensors   tokens, tokens_flip: (N, h·w) int16 code indices in raster order, one row per
                               record; metadata: the autoencoder's sha256 and the row count

The tokens are derived from the latents with the autoencoder's own quantizer (nearest codebook entry; a dVAE's
latents are its argmax codes' codebook vectors, read back exactly), so `decode_tokens(model, tokens)` gives exactly
what the autoencoder's decoder makes of the image.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from diffusers import VQModel
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from t2i.autoencoder.cache import LatentCache, cache_latents
from t2i.autoencoder.dvae import DiscreteVAE
from t2i.autoencoder.model import load_autoencoder
from t2i.devices import process_state

TokenAutoencoder = VQModel | DiscreteVAE


def load_token_autoencoder(autoencoder_dir: str | Path) -> TokenAutoencoder:
    model = load_autoencoder(autoencoder_dir)
    if not isinstance(model, TokenAutoencoder):
        raise ValueError(
            f"{autoencoder_dir}: image tokens need a VQ autoencoder or a discrete VAE (autoencoder.kind: vq or dvae), "
            "not KL"
        )
    return model


def num_codes(model: TokenAutoencoder) -> int:
    return model.config.num_vq_embeddings


def grid_side(model: TokenAutoencoder) -> int:
    """The side of an image's code grid: the image side over the downsampling factor."""
    return model.config.sample_size // 2 ** (len(model.config.block_out_channels) - 1)


@torch.no_grad()
def quantize(model: TokenAutoencoder, latents: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Code indices (B, h·w), raster order, of latents (B, C, h, w): the nearest codebook entries."""
    rows = []
    for batch in latents.split(batch_size):
        batch = batch.to(model.device, model.dtype)
        if isinstance(model, DiscreteVAE):
            rows.append(model.nearest_codes(batch).cpu())
        else:
            _, _, (_, _, indices) = model.quantize(batch)
            rows.append(indices.view(len(batch), -1).cpu())
    return torch.cat(rows)


@torch.no_grad()
def decode_tokens(model: TokenAutoencoder, tokens: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, H, W) from code indices (B, h·w): each code's codebook vector, then the decoder."""
    side, tokens = int(tokens.shape[1] ** 0.5), tokens.to(model.device)
    if isinstance(model, DiscreteVAE):
        return model.decode(model.embed(tokens.view(len(tokens), side, side))).sample
    shape = (len(tokens), side, side, model.config.latent_channels)
    z_q = model.quantize.get_codebook_entry(tokens.reshape(-1), shape)
    return model.decode(z_q, force_not_quantize=True).sample


def cache_tokens(autoencoder_dir, data_dir, out, flip: bool = True, split_fractions=(0.9, 0.05, 0.05)) -> Path:
    """`t2i cache tokens`: the latent cache (split over processes, if launched as several), then every image's
    tokens (made by the main process; reused when made by this autoencoder)."""
    model = load_token_autoencoder(autoencoder_dir)  # refuses a KL autoencoder before any work
    out = Path(cache_latents(autoencoder_dir, data_dir, out, flip=flip, split_fractions=split_fractions))
    with process_state().main_process_first():
        latents = LatentCache(out, autoencoder_dir)
        digest, path = latents.manifest["autoencoder_sha256"], out / "tokens.safetensors"
        if path.is_file():
            with safe_open(path, "pt") as f:
                if (f.metadata() or {}) == {"autoencoder_sha256": digest, "rows": str(len(latents))}:
                    return out
        names = [n for n in ("latents", "latents_flip") if n in latents.tensors]
        tokens = {
            n.replace("latents", "tokens"): quantize(model, latents.tensors[n]).to(torch.int16)
            for n in tqdm(names, desc="cache tokens")
        }
        metadata = {"autoencoder_sha256": digest, "rows": str(len(latents))}
        save_file(tokens, path.with_suffix(".tmp"), metadata=metadata)
        os.replace(path.with_suffix(".tmp"), path)
    return out


class TokenCache:
    """Read a token cache; refuses one made by another autoencoder or out of step with its latent cache."""

    def __init__(self, path: str | Path, autoencoder_dir: str | Path | None = None):
        latents = LatentCache(path, autoencoder_dir)
        self.records, self.flip = latents.records, latents.manifest["flip"]
        file = Path(path) / "tokens.safetensors"
        if not file.is_file():
            raise FileNotFoundError(f"no image tokens in {path}: run `t2i cache tokens`")
        with safe_open(file, "pt") as f:
            expected = {"autoencoder_sha256": latents.manifest["autoencoder_sha256"], "rows": str(len(self.records))}
            if (f.metadata() or {}) != expected:
                raise ValueError(f"the tokens in {path} do not match its latents: re-run `t2i cache tokens`")
            self.tensors = {k: f.get_tensor(k).long() for k in f.keys()}

    def __len__(self) -> int:
        return len(self.records)

    def tokens(self, index: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Code indices (B, h·w) of the given rows (their mirror images where `flip`)."""
        rows = self.tensors["tokens"][index]
        return torch.where(flip.view(-1, 1), self.tensors["tokens_flip"][index], rows) if self.flip else rows
