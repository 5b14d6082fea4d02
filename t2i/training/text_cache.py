"""The text-embedding cache: each unique caption encoded once by a frozen text encoder.

    CACHE/text-<encoder id>-<max tokens>[-<precision>]/shard-00000.safetensors ...   (no suffix: fp32)
        embeddings (N, max_tokens, D) float16, metadata "keys": the sha1 of each caption, in row order

Shards hold `shard_size` captions each, sorted by hash, and are written atomically, so an interrupted
run resumes. The empty caption (the unconditional input) is always included.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from t2i.devices import autocast, process_state, to_device


def caption_key(caption: str) -> str:
    return hashlib.sha1(caption.encode("utf-8")).hexdigest()


def encoder_id(text_encoder) -> str:
    """The identity of a frozen encoder: sha256 of its weights' names, shapes and bytes and of its tokenizer."""
    h = hashlib.sha256()
    for name, tensor in text_encoder.state_dict().items():
        h.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    tokenizer = text_encoder.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)  # a fast tokenizer: vocab, normalizer, template
    if backend:  # without the padding and truncation state that the first call to the tokenizer leaves in it
        described = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("padding", "truncation")}
        h.update(json.dumps(described, sort_keys=True).encode())
    else:
        h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    return h.hexdigest()[:16]


class TextEmbeddingCache:
    """Maps captions to their (max_tokens, D) embeddings; builds missing shards on open, with the encoder on its
    own device, in `precision` (accelerate's "no", "bf16", "fp16"); with several processes (`accelerate
    launch`), process k builds shards k, k + n, ..., and every process then reads them all."""

    def __init__(
        self,
        folder: str | Path,
        text_encoder,
        captions: list[str],
        shard_size: int = 8192,
        batch_size: int = 256,
        precision: str = "no",
    ):
        self.tokenizer, self.max_tokens = text_encoder.tokenizer, text_encoder.max_tokens
        # the precision is part of the key: a bf16-encoded cache is not the fp32 one, and runs sharing a folder
        # must not depend on which of them encoded it first
        precision_key = "" if precision == "no" else f"-{precision}"
        self.folder = Path(folder) / f"text-{encoder_id(text_encoder)}-{text_encoder.max_tokens}{precision_key}"
        self.folder.mkdir(parents=True, exist_ok=True)
        unique = sorted({caption_key(c): c for c in [*captions, ""]}.items())
        shards = [unique[i : i + shard_size] for i in range(0, len(unique), shard_size)]
        state = process_state()
        if state.is_main_process:
            (self.folder / "index.json").write_text(json.dumps({"captions": len(unique), "shards": len(shards)}))
        mine = range(state.process_index, len(shards), state.num_processes)
        todo = [n for n in mine if not self._complete(n, shards[n])]
        total = sum(len(shards[n]) for n in todo)
        shown = state.is_main_process and total > 0
        progress = tqdm(total=total, desc="cache text embeddings", unit="caption", disable=not shown)
        for number in todo:
            shard, path = shards[number], self._shard(number)
            rows = []
            for b in range(0, len(shard), batch_size):
                with autocast(precision, next(text_encoder.parameters()).device):
                    embeddings, _ = text_encoder.encode([c for _, c in shard[b : b + batch_size]])
                rows.append(embeddings.to(torch.float16).cpu())
                progress.update(len(embeddings))
            tmp = path.with_suffix(f".tmp{state.process_index}")
            save_file({"embeddings": torch.cat(rows)}, tmp, metadata={"keys": json.dumps([k for k, _ in shard])})
            os.replace(tmp, path)
        progress.close()
        state.wait_for_everyone()
        self.embeddings = torch.cat([self._load(self._shard(n)) for n in range(len(shards))])
        self.row = {key: i for i, (key, _) in enumerate(unique)}
        self.captions = [caption for _, caption in unique]

    def _shard(self, number: int) -> Path:
        return self.folder / f"shard-{number:05d}.safetensors"

    def _complete(self, number: int, shard: list[tuple[str, str]]) -> bool:
        return self._shard(number).exists() and self._keys(self._shard(number)) == [k for k, _ in shard]

    @staticmethod
    def _keys(path: Path) -> list[str]:
        with safe_open(path, "pt") as f:
            return json.loads(f.metadata()["keys"])

    @staticmethod
    def _load(path: Path) -> torch.Tensor:
        with safe_open(path, "pt") as f:
            return f.get_tensor("embeddings")

    @property
    def nbytes(self) -> int:
        return self.embeddings.nbytes

    def to(self, device: torch.device) -> TextEmbeddingCache:
        """Keep the embeddings on `device` (a GPU, when they fit): a batch is then gathered there."""
        self.embeddings = self.embeddings.to(device)
        return self

    def __call__(self, captions: list[str]) -> torch.Tensor:
        """(B, max_tokens, D) float32 embeddings of captions that were in the cache, on the cache's device."""
        rows = torch.tensor([self.row[caption_key(c)] for c in captions])
        return self.embeddings[to_device(rows, self.embeddings.device)].float()

    @functools.cached_property
    def lengths(self) -> torch.Tensor:
        """Real tokens of every cached caption (after truncation), counted once, in row order."""
        ids = self.tokenizer(self.captions, truncation=True, max_length=self.max_tokens)["input_ids"]
        return torch.tensor([len(i) for i in ids])

    def with_mask(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The embeddings and their (B, max_tokens) attention mask, 1 at the caption's real tokens (the
        tokenizer's own padding mask: real tokens first), without tokenizing the batch again."""
        lengths = self.lengths[[self.row[caption_key(c)] for c in captions]]
        mask = (torch.arange(self.max_tokens) < lengths[:, None]).long()
        return self(captions), to_device(mask, self.embeddings.device)
