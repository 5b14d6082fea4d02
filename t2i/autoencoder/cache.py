"""The latent cache: every image encoded once, so diffusion training never runs the encoder.

    OUT/cache.json           autoencoder sha256, image size, kind, flip, shard size, record count
    OUT/records.jsonl        id, split, captions, attributes of each record, in shard order
    OUT/shard-00000.safetensors ...
        KL: mean, logvar (and mean_flip, logvar_flip); VQ: latents (and latents_flip); unscaled

KL shards keep the posterior N(mean, exp(logvar)) so that training draws a fresh z each epoch.
Shards are written under a temporary name and renamed, so re-running resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from diffusers import VQModel
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from t2i.autoencoder.model import load_autoencoder
from t2i.data.check import attribute_vector
from t2i.data.datasets import ImageCaptionDataset, load_pixels, split_of


def autoencoder_hash(model_dir: str | Path) -> str:
    """sha256 of the autoencoder's weights file: the identity a cache is tied to."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no safetensors weights in {model_dir}")
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def _check_manifest(out: Path, expected: dict) -> None:
    manifest = json.loads((out / "cache.json").read_text())
    for key in ("autoencoder_sha256", "image_size", "flip", "shard_size", "num_records"):
        if manifest.get(key) != expected[key]:
            raise ValueError(
                f"latent cache {out} was made with {key}={manifest.get(key)!r}, not {expected[key]!r}: "
                "use another --out folder or delete this one"
            )


@torch.no_grad()
def cache_latents(
    autoencoder_dir: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    flip: bool = True,
    shard_size: int = 2048,
    batch_size: int = 64,
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
) -> Path:
    """Encode every usable image of a dataset (all splits) into sharded safetensors; resumable."""
    model = load_autoencoder(autoencoder_dir)
    size = model.config.sample_size
    data = ImageCaptionDataset(data_dir, size, split=None, random_caption=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "autoencoder_sha256": autoencoder_hash(autoencoder_dir),
        "kind": "vq" if isinstance(model, VQModel) else "kl",
        "image_size": size,
        "flip": flip,
        "shard_size": shard_size,
        "num_records": len(data),
        "scaling_factor": model.config.scaling_factor,
    }
    if (out / "cache.json").exists():
        _check_manifest(out, manifest)
    else:
        (out / "cache.json").write_text(json.dumps(manifest, indent=2))
    rows = [
        {
            "id": r.id,
            "split": split_of(r.id, split_fractions),
            "captions": r.captions,
            "attributes": attribute_vector(r.attributes),
        }
        for r in data.records
    ]
    (out / "records.tmp").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    os.replace(out / "records.tmp", out / "records.jsonl")  # atomic: other processes may be reading it

    shards = range(0, len(data), shard_size)
    for number, start in enumerate(tqdm(shards, desc="cache latents", unit="shard")):
        path = out / f"shard-{number:05d}.safetensors"
        if path.exists():
            continue  # completed by an earlier run
        records = data.records[start : start + shard_size]
        tensors: dict[str, list[torch.Tensor]] = {}
        for flipped in (False, True) if flip else (False,):
            suffix = "_flip" if flipped else ""
            for b in range(0, len(records), batch_size):
                x = torch.stack([load_pixels(r.image, size, flipped) for r in records[b : b + batch_size]])
                if manifest["kind"] == "kl":
                    posterior = model.encode(x).latent_dist
                    tensors.setdefault("mean" + suffix, []).append(posterior.mean)
                    tensors.setdefault("logvar" + suffix, []).append(posterior.logvar)
                else:
                    tensors.setdefault("latents" + suffix, []).append(model.encode(x).latents)
        tmp = path.with_suffix(".tmp")
        save_file(
            {k: torch.cat(v).contiguous() for k, v in tensors.items()},
            tmp,
            metadata={"ids": json.dumps([r.id for r in records])},
        )
        os.replace(tmp, path)
    return out


class LatentCache:
    """Read a latent cache; refuses one made with another autoencoder or image size."""

    def __init__(self, path: str | Path, autoencoder_dir: str | Path | None = None, image_size: int | None = None):
        self.path = Path(path)
        if not (self.path / "cache.json").is_file():
            raise FileNotFoundError(f"not a latent cache (no cache.json): {self.path}; run `t2i cache latents`")
        self.manifest = json.loads((self.path / "cache.json").read_text())
        if autoencoder_dir is not None and autoencoder_hash(autoencoder_dir) != self.manifest["autoencoder_sha256"]:
            raise ValueError(f"latent cache {self.path} was made with another autoencoder than {autoencoder_dir}")
        if image_size is not None and image_size != self.manifest["image_size"]:
            raise ValueError(
                f"latent cache {self.path} holds {self.manifest['image_size']}px images, the config asks {image_size}px"
            )
        lines = (self.path / "records.jsonl").read_text(encoding="utf-8").splitlines()
        self.records = [json.loads(line) for line in lines]
        shards = sorted(self.path.glob("shard-*.safetensors"))
        expected = -(-len(self.records) // self.manifest["shard_size"])
        if len(shards) != expected:
            raise ValueError(f"latent cache {self.path} is incomplete ({len(shards)}/{expected} shards): re-run it")
        parts = [load_file(s) for s in shards]
        self.tensors = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def __len__(self) -> int:
        return len(self.records)

    def _rows(self, name: str, index: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        rows = self.tensors[name][index]
        if not self.manifest["flip"]:
            return rows
        return torch.where(flip.view(-1, 1, 1, 1), self.tensors[name + "_flip"][index], rows)

    def latents(self, index: torch.Tensor, flip: torch.Tensor, generator: torch.Generator | None = None):
        """Unscaled z for the given rows (flipped variants where `flip`): z = μ + exp(½ log σ²)·ε for KL."""
        if self.manifest["kind"] == "vq":
            return self._rows("latents", index, flip)
        mean, logvar = self._rows("mean", index, flip), self._rows("logvar", index, flip)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * noise
