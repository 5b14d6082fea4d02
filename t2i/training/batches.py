"""What every family trains on: which rows, captions and flips make up a batch, and the captions' embedding cache.

A family's data (t2i.autoencoder.cache.LatentCache, t2i.data.pixels.PixelImages, t2i.autoencoder.tokens.
TokenCache) has `records` (id, split, captions); the batches of step s are a pure function of (seed, s), so a
resumed run sees the batches an uninterrupted one sees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from t2i.config import CaptionAugmentConfig
from t2i.data.augment import with_rewrites
from t2i.data.datasets import epoch_order
from t2i.training.text_cache import TextEmbeddingCache


class BatchPlan:
    """Which cache rows, captions, flips and dropped captions make up a micro-batch: a pure function of it."""

    def __init__(
        self,
        cache,
        rows: list[int],
        *,
        seed: int,
        batch_size: int,
        cfg_dropout: float,
        captions_per_image: int | None = None,
        augment: CaptionAugmentConfig | None = None,
    ):
        self.cache, self.rows, self.seed = cache, np.asarray(rows), seed
        self.batch_size, self.cfg_dropout = batch_size, cfg_dropout
        augment = augment or CaptionAugmentConfig(rewrites=0)
        self.row_captions = {  # rewritten once here, not in every micro-batch
            row: with_rewrites(cache.records[row]["captions"][:captions_per_image], augment, seed) for row in rows
        }

    @classmethod
    def of_training(cls, cache, tc, augment: CaptionAugmentConfig, cfg_dropout: float = 0.0) -> BatchPlan:
        """The plan over every training row of `cache`, at a training section's seed, batch size and captions."""
        return cls(
            cache,
            train_rows(cache),
            seed=tc.seed,
            batch_size=tc.batch_size,
            cfg_dropout=cfg_dropout,
            captions_per_image=tc.captions_per_image,
            augment=augment,
        )

    def captions(self, row: int) -> list[str]:
        """The captions that training draws from for one image: its first `captions_per_image`, each followed by
        its rewrites (t2i.data.augment)."""
        return self.row_captions[row]

    def all_captions(self) -> set[str]:
        """Every caption a batch can hold."""
        return {c for row in self.rows.tolist() for c in self.captions(row)}

    def micro_batch(self, index: int):
        """Micro-batch `index` (counted over all processes): row ids, captions (some ""), flips."""
        rows, captions, flips = [], [], []
        for position in range(index * self.batch_size, (index + 1) * self.batch_size):
            epoch, offset = divmod(position, len(self.rows))
            row = int(self.rows[epoch_order(self.seed, epoch, len(self.rows))[offset]])
            rng = np.random.default_rng([self.seed, position, 2])
            record_captions = self.captions(row)
            caption = record_captions[rng.integers(len(record_captions))]
            rows.append(row)
            flips.append(bool(rng.random() < 0.5))
            captions.append("" if rng.random() < self.cfg_dropout else caption)
        return torch.tensor(rows), captions, torch.tensor(flips)


def train_rows(cache) -> list[int]:
    """The rows of the train split."""
    return [i for i, r in enumerate(cache.records) if r["split"] == "train"]


def held_out_rows(cache, n: int) -> list[int]:
    """The rows of n images the model does not train on (val, then test, then train split, each by id)."""
    order, records = {"val": 0, "test": 1, "train": 2}, cache.records
    return sorted(range(len(records)), key=lambda i: (order[records[i]["split"]], records[i]["id"]))[:n]


def held_out_captions(cache, n: int) -> list[str]:
    """The first caption of the held_out_rows: the sample grid's default prompts, in the dataset's own words."""
    return [cache.records[i]["captions"][0] for i in held_out_rows(cache, n)]


def sample_prompts(tc, cache) -> list[str]:
    """The sample grid's prompts: the training section's `sample_prompts`, else 8 held-out captions."""
    return list(tc.sample_prompts) or held_out_captions(cache, 8)


def caption_cache(
    folder: str | Path, text_encoder, plan: BatchPlan, prompts: list[str], precision: str = "no"
) -> TextEmbeddingCache:
    """The embeddings of every caption the plan can draw and of the sample prompts, encoded once into `folder`."""
    return TextEmbeddingCache(
        Path(folder), text_encoder, sorted(plan.all_captions() | set(prompts)), precision=precision
    )


def step_generator(seed: int, index: int) -> torch.Generator:
    """The generator of draw `index` (a step, or a micro-batch over all processes): a pure function of both."""
    return torch.Generator().manual_seed(seed * 1_000_003 + index)
