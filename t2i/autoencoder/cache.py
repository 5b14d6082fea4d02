"""The latent cache: every image encoded once, so diffusion training never runs the encoder.

    OUT/cache.json           what makes a latent (autoencoder sha256, kind, image size, flip, shard size,
                             scaling factor), then, once complete, the shard and record counts
    OUT/records.jsonl        id, split, captions, attributes of each cached image, in shard order
    OUT/shard-00000.safetensors ...
        KL: mean, logvar (and mean_flip, logvar_flip); VQ, dVAE: latents (and latents_flip); unscaled
        metadata: "ids" (its rows) and "sources" ([id, sha1 of the image file] of every image it covers)

KL shards keep the posterior N(mean, exp(logvar)) so that training draws a fresh z each epoch.
A shard is reused only when it covers the same image files, byte for byte; a changed dataset re-encodes
the shards it touches, and records.jsonl is written last, from the shards' own ids. Shards are written
under a temporary name and renamed, so re-running resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from t2i.autoencoder.model import autoencoder_kind, load_autoencoder
from t2i.data.check import Record, attribute_vector
from t2i.data.datasets import UNREADABLE, ImageCaptionDataset, load_pixels, split_of
from t2i.devices import autocast, process_state, resolve_precision, to_device
from t2i.hub import local_folder

log = logging.getLogger(__name__)
IDENTITY = ("autoencoder_sha256", "kind", "image_size", "flip", "shard_size")  # a mismatch refuses the folder


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
    for key in IDENTITY:
        if manifest.get(key) != expected[key]:
            raise ValueError(
                f"latent cache {out} was made with {key}={manifest.get(key)!r}, not {expected[key]!r}: "
                "use another --out folder or delete this one"
            )


def _shard_metadata(path: Path) -> dict:
    with safe_open(path, "pt") as f:
        return f.metadata() or {}


def _stale_reason(metadata: dict, sources: list[list[str]]) -> str | None:
    """Why an existing shard (its metadata) cannot be reused for these images (None: it can)."""
    stored = json.loads(metadata.get("sources", "null"))
    if stored is None:
        return "written without image hashes (an older t2i)"
    if stored == sources:
        return None
    for (old_id, old_hash), (new_id, new_hash) in zip(stored, sources, strict=False):
        if old_id != new_id:
            return f"made for other images (image {old_id!r} where the dataset now has {new_id!r})"
        if old_hash != new_hash:
            return f"image {new_id!r} changed since it was encoded"
    return f"made for {len(stored)} images, the dataset now has {len(sources)} in its range"


class _Pixels(torch.utils.data.Dataset):
    """Decoded images of some records (decoded by DataLoader workers); an unreadable file gives None."""

    def __init__(self, records: list[Record], size: int):
        self.records, self.size = records, size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        record = self.records[index]
        try:
            return record.id, load_pixels(record.image, self.size, sha1=record.sha1)
        except UNREADABLE as error:
            log.warning("skipped %s: %s", record.image, error)
            return record.id, None


def _readable(batch: list) -> tuple[list[str], torch.Tensor | None]:
    """A DataLoader collate: the ids and stacked pixels of the readable images of a batch."""
    kept = [(i, x) for i, x in batch if x is not None]
    return [i for i, _ in kept], torch.stack([x for _, x in kept]) if kept else None


@torch.no_grad()
def _encode(model, kind: str, x: torch.Tensor, flip: bool) -> dict[str, torch.Tensor]:
    """The latents of a batch (and of its mirror image, in the same forward pass), float32, on its device."""
    n = len(x)
    if flip:
        x = torch.cat([x, x.flip(-1)])  # the mirrored image (load_pixels(flip=True) crops first, then mirrors)
    if kind == "kl":
        posterior = model.encode(x).latent_dist
        parts = {"mean": posterior.mean, "logvar": posterior.logvar}
    else:
        parts = {"latents": model.encode(x).latents}
    tensors = {}
    for name, value in parts.items():
        value = value.float()
        tensors[name] = value[:n]
        if flip:
            tensors[name + "_flip"] = value[n:]
    return tensors


def _shards_to_encode(out: Path, shards, sources, shard_size: int, state) -> list[int]:
    """This process's shards that no earlier run completed for these very files (a stale one is named)."""
    todo = []
    for number in range(state.process_index, len(shards), state.num_processes):
        path = out / f"shard-{number:05d}.safetensors"
        if path.exists():
            try:
                reason = _stale_reason(_shard_metadata(path), sources[number * shard_size : (number + 1) * shard_size])
            except Exception as error:  # safetensors raises its own error types for a damaged file
                reason = f"unreadable ({error})"
            if reason is None:
                continue
            log.warning("latent cache %s: re-encoding shard %d: %s", out, number, reason)
        todo.append(number)
    return todo


def _encode_shards(model, out: Path, todo, shards, sources, manifest, state, *, batch_size, workers, precision):
    """Encode and write the `todo` shards, their images decoded by `workers` processes, in order, in batches that
    stay within a shard; each shard written atomically with the ids it holds and the sources it covers."""
    device, size, flip, shard_size = model.device, manifest["image_size"], manifest["flip"], manifest["shard_size"]
    records = [r for n in todo for r in shards[n]]
    batches_of, first = {}, 0  # shard -> its batches, as positions in `records`
    for n in todo:
        batches_of[n] = [
            list(range(first + b, first + min(b + batch_size, len(shards[n]))))
            for b in range(0, len(shards[n]), batch_size)
        ]
        first += len(shards[n])
    loader = torch.utils.data.DataLoader(
        _Pixels(records, size),
        batch_sampler=[batch for n in todo for batch in batches_of[n]],
        num_workers=workers,
        collate_fn=_readable,
        pin_memory=device.type == "cuda",
    )
    loaded = iter(loader)
    progress = tqdm(total=len(records), desc="cache latents", unit="img", disable=not state.is_main_process)
    for number in todo:
        shard_ids, parts = [], {}
        for batch in batches_of[number]:
            ids, x = next(loaded)
            if x is not None:
                with autocast(precision, device):
                    latents = _encode(model, manifest["kind"], x.to(device, non_blocking=True), flip)
                for name, value in latents.items():
                    parts.setdefault(name, []).append(value)
                shard_ids += ids
            progress.update(len(batch))
        path = out / f"shard-{number:05d}.safetensors"
        covered = sources[number * shard_size : (number + 1) * shard_size]
        tensors = {name: torch.cat(values).cpu() for name, values in parts.items()}
        tmp = path.with_suffix(f".tmp{state.process_index}")
        save_file(tensors, tmp, metadata={"ids": json.dumps(shard_ids), "sources": json.dumps(covered)})
        os.replace(tmp, path)
    progress.close()


def _write_records(out: Path, data, n_shards: int, split_fractions, manifest: dict) -> None:
    """records.jsonl from the shards' ids (written last, atomically), then the complete manifest."""
    ids = [i for n in range(n_shards) for i in json.loads(_shard_metadata(out / f"shard-{n:05d}.safetensors")["ids"])]
    by_id = {r.id: r for r in data.records}
    rows = [
        {
            "id": i,
            "split": split_of(i, split_fractions),
            "captions": by_id[i].captions,
            "attributes": attribute_vector(by_id[i].attributes, data.report.attribute_names),
        }
        for i in ids
    ]
    (out / "records.tmp").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    os.replace(out / "records.tmp", out / "records.jsonl")  # atomic: other processes may be reading it
    (out / "cache.tmp").write_text(json.dumps(manifest | {"num_shards": n_shards, "num_records": len(rows)}))
    os.replace(out / "cache.tmp", out / "cache.json")


def cache_latents(
    autoencoder_dir: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    flip: bool = True,
    shard_size: int = 2048,
    batch_size: int = 64,
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
    mixed_precision: str = "auto",
    num_workers: int | None = None,
) -> Path:
    """Encode every usable image of a dataset (all splits) into sharded safetensors; resumable.

    Runs on accelerate's device in `mixed_precision` ("auto": bf16 where it is native). Launched as n
    processes (`accelerate launch`), process k encodes shards k, k + n, ..., and each returns once the cache
    is complete. `num_workers` processes decode the images (None: 8 with a GPU, 0 on a CPU)."""
    state = process_state()
    device = state.device
    autoencoder_dir = local_folder(autoencoder_dir)  # a Hub id too (stabilityai/sd-vae-ft-mse)
    model = load_autoencoder(autoencoder_dir).to(device)
    size = model.config.sample_size
    data = ImageCaptionDataset(data_dir, size, split=None, random_caption=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "autoencoder_sha256": autoencoder_hash(autoencoder_dir),
        "kind": autoencoder_kind(model),
        "image_size": size,
        "flip": flip,
        "shard_size": shard_size,
        "scaling_factor": model.config.scaling_factor,
    }
    if (out / "cache.json").exists():
        _check_manifest(out, manifest)
    state.wait_for_everyone()  # every process has checked the old manifest before it is rewritten
    if state.is_main_process:
        (out / "cache.json").write_text(json.dumps(manifest, indent=2))  # incomplete until num_shards is added

    sources = [[r.id, r.sha1] for r in data.records]  # hashed by the dataset scan, which read every file
    shards = [data.records[start : start + shard_size] for start in range(0, len(data), shard_size)]
    todo = _shards_to_encode(out, shards, sources, shard_size, state)

    workers = num_workers if num_workers is not None else (min(8, os.cpu_count() or 1) if device.type == "cuda" else 0)
    encoding = dict(batch_size=batch_size, workers=workers, precision=resolve_precision(mixed_precision, device))
    _encode_shards(model, out, todo, shards, sources, manifest, state, **encoding)
    state.wait_for_everyone()
    if not state.is_main_process:
        return out
    for stale in sorted(out.glob("shard-*.safetensors"))[len(shards) :]:
        stale.unlink()  # shards of a larger dataset that used this folder before

    _write_records(out, data, len(shards), split_fractions, manifest)
    return out


class LatentCache:
    """Read a latent cache; refuses one made with another autoencoder or image size, or an inconsistent one."""

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
        shards = sorted(self.path.glob("shard-*.safetensors"))
        expected = self.manifest.get("num_shards")
        if expected is None or len(shards) != expected or not (self.path / "records.jsonl").is_file():
            found = f"{len(shards)}/{expected} shards" if expected else "not finished, or made by an older t2i"
            raise ValueError(f"latent cache {self.path} is incomplete ({found}): re-run `t2i cache latents`")
        lines = (self.path / "records.jsonl").read_text(encoding="utf-8").splitlines()
        self.records = [json.loads(line) for line in lines]
        ids, parts = [], []
        for shard in shards:  # one read per shard: its row ids and its tensors
            with safe_open(shard, "pt") as f:
                ids += json.loads(f.metadata()["ids"])
                if f.keys():  # a shard of unreadable images is empty
                    parts.append({k: f.get_tensor(k) for k in f.keys()})
        record_ids = [r["id"] for r in self.records]
        if ids != record_ids:
            row = next(
                (k for k, (a, b) in enumerate(zip(ids, record_ids, strict=False)) if a != b),
                min(len(ids), len(record_ids)),
            )
            raise ValueError(
                f"latent cache {self.path} is inconsistent: its shards and records.jsonl disagree at row {row} "
                f"({len(ids)} latents, {len(record_ids)} records): re-run `t2i cache latents`"
            )
        self.tensors = {k: torch.cat([p[k] for p in parts]) for k in (parts[0] if parts else ())}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())

    def to(self, device: torch.device) -> LatentCache:
        """Keep the latents on `device` (a GPU, when they fit): a batch is then gathered there."""
        self.tensors = {k: v.to(device) for k, v in self.tensors.items()}
        return self

    def _rows(self, name: str, index: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        rows = self.tensors[name][index]
        if not self.manifest["flip"]:
            return rows
        return torch.where(flip.view(-1, 1, 1, 1), self.tensors[name + "_flip"][index], rows)

    def latents(self, index: torch.Tensor, flip: torch.Tensor, generator: torch.Generator | None = None):
        """Unscaled z for the given rows (flipped variants where `flip`), on the cache's device:
        z = μ + exp(½ log σ²)·ε for KL, ε drawn from `generator` on the CPU."""
        device = next(iter(self.tensors.values())).device
        index, flip = to_device(index, device), to_device(flip, device)
        if self.manifest["kind"] != "kl":  # vq, dvae: the latents themselves
            return self._rows("latents", index, flip)
        mean, logvar = self._rows("mean", index, flip), self._rows("logvar", index, flip)
        noise = to_device(torch.randn(mean.shape, generator=generator, dtype=mean.dtype), device)
        return mean + torch.exp(0.5 * logvar) * noise
