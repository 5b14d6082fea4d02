"""Every image of a dataset decoded once into memory as uint8 (what `load_pixels` makes of a file, exactly), with
the latent cache's interface: the data of the families that train in pixel space (pixel diffusion, GAN-CLS)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from tqdm import tqdm

from t2i.data.datasets import UNREADABLE, ImageCaptionDataset, load_pixels, split_of
from t2i.devices import to_device

log = logging.getLogger(__name__)


class PixelImages:
    """Every image of a dataset in memory, with the latent cache's interface: `records`, `latents(rows, flips)`."""

    def __init__(self, data_dir: str | Path, size: int, split_fractions=(0.9, 0.05, 0.05), flip: bool = True):
        self.flip = flip  # as the latent cache's manifest: without it, `flips` are ignored
        dataset = ImageCaptionDataset(data_dir, size, split=None, split_fractions=split_fractions)
        self.records, pixels = [], []
        for record in tqdm(dataset.records, desc="load images", unit="img"):
            try:
                x = load_pixels(record.image, size, sha1=record.sha1)
            except UNREADABLE as error:
                log.warning("skipped %s: %s", record.image, error)
                continue
            pixels.append(((x + 1) * 127.5).round().to(torch.uint8))  # exact: load_pixels is u8 / 127.5 − 1
            split = split_of(record.id, split_fractions)
            self.records.append({"id": record.id, "split": split, "captions": record.captions})
        self.pixels = torch.stack(pixels)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes

    def to(self, device: torch.device) -> PixelImages:
        """Keep the images on `device` (a GPU, when they fit): a batch is then gathered there."""
        self.pixels = self.pixels.to(device)
        return self

    def latents(self, index: torch.Tensor, flip: torch.Tensor, generator: torch.Generator | None = None):
        """x0 in [-1, 1] for the given rows, mirrored left-right where `flip`, on the images' device."""
        index, flip = to_device(index, self.pixels.device), to_device(flip, self.pixels.device)
        x = self.pixels[index].float() / 127.5 - 1.0
        return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x) if self.flip else x
