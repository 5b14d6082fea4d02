"""ImageCaptionDataset: one dataset class over the three sources that `t2i.data.check` reads."""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from t2i.data.check import Record, ScanReport, attribute_vector, open_rgb, scan_dataset

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
UNREADABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)  # what a bad image file raises


def split_of(record_id: str, fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)) -> str:
    """Deterministic split from a hash of the image id, so adding images never moves old ones."""
    u = int.from_bytes(hashlib.sha1(record_id.encode("utf-8")).digest()[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


def load_pixels(path: Path, size: int, flip: bool = False, sha1: str = "") -> torch.Tensor:
    """Image file -> float tensor (3, size, size) in [-1, 1]: resize the short side, centre-crop, flip. With the
    `sha1` the scan recorded, a file replaced since the scan is a ValueError instead (never trained on unseen)."""
    data = path.read_bytes()
    if sha1 and hashlib.sha1(data).hexdigest() != sha1:
        raise ValueError("the file changed since the scan (its bytes are not the scanned ones); re-run to rescan")
    image, _ = open_rgb(io.BytesIO(data))
    w, h = image.size
    scale = size / min(w, h)
    if scale != 1:
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.LANCZOS)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


class ImageCaptionDataset(torch.utils.data.Dataset):
    """Images with captions from an MM-CelebA-HQ folder, an imagefolder, or a CSV/JSONL manifest.

    Each item: pixel_values (3, size, size) in [-1, 1], one caption (drawn at random when
    `random_caption`, else the first), attributes (1/-1 for each of `report.attribute_names`, 0 where unknown)
    and the image id.
    Randomness (caption choice, flip) is a pure function of (seed, epoch, index): `item(index, epoch)`,
    or `set_epoch` then `dataset[index]`.
    """

    def __init__(
        self,
        path: str | Path,
        size: int,
        split: str | None = "train",
        flip: bool = False,
        random_caption: bool = True,
        seed: int = 0,
        split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
        report: ScanReport | None = None,
    ):
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        self.report = report or scan_dataset(path, size)
        if self.report.skipped:
            log.warning(
                "%s: %d problems, images or rows skipped (`t2i data check` lists them)", path, self.report.skipped
            )
        self.records: list[Record] = [
            r for r in self.report.records if split is None or split_of(r.id, split_fractions) == split
        ]
        if not self.records:
            raise ValueError(f"{path}: no usable images in split {split!r}")
        self.size, self.flip, self.random_caption, self.seed = size, flip, random_caption, seed
        self.epoch = 0
        self.unreadable: set[str] = set()  # paths of images that broke after the scan (skipped from then on)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        return self.item(index, self.epoch)

    def item(self, index: int, epoch: int) -> dict:
        # an image that became unreadable after the scan is skipped, counted and named; the next one stands in
        for offset in range(len(self.records)):
            record = self.records[(index + offset) % len(self.records)]
            if str(record.image) in self.unreadable:
                continue
            rng = np.random.default_rng([self.seed, epoch, index])
            caption = record.captions[rng.integers(len(record.captions))] if self.random_caption else record.captions[0]
            flip = self.flip and rng.random() < 0.5
            try:
                pixels = load_pixels(record.image, self.size, flip, record.sha1)
            except UNREADABLE as error:
                self.unreadable.add(str(record.image))
                log.warning("skipped %s: %s; %d such files", record.image, error, len(self.unreadable))
                continue
            return {
                "pixel_values": pixels,
                "caption": caption,
                "attributes": torch.tensor(
                    attribute_vector(record.attributes, self.report.attribute_names), dtype=torch.int8
                ),
                "id": record.id,
            }
        broken = len(self.unreadable)
        raise ValueError(f"{self.report.source}: no readable images left ({broken} broke or changed after the scan)")


@functools.lru_cache(maxsize=2)
def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The data order of one epoch: a permutation of range(n) drawn from (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 1]).permutation(n)


class EpochStream(torch.utils.data.Dataset):
    """An endless stream over a dataset: position p is item perm_e[p mod n] of epoch e = p // n.

    Each epoch has its own permutation drawn from (seed, e), so the data order, captions and flips of
    a run are a pure function of the position: a run resumed at step s sees exactly the batches an
    uninterrupted run sees.
    """

    def __init__(self, dataset: ImageCaptionDataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __getitem__(self, position: int) -> dict:
        epoch, offset = divmod(position, len(self.dataset))
        return self.dataset.item(int(epoch_order(self.seed, epoch, len(self.dataset))[offset]), epoch)


def step_batches(start_step: int, batch_size: int, rank: int = 0, world: int = 1):
    """Batch sampler for EpochStream: the positions of step s for this process, from start_step on."""
    step = start_step
    while True:
        first = (step * world + rank) * batch_size
        yield list(range(first, first + batch_size))
        step += 1
