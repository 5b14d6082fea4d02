"""`t2i data preview`: a grid of dataset images with a caption under each."""

from __future__ import annotations

from pathlib import Path

from t2i.data.check import list_records
from t2i.data.datasets import UNREADABLE, load_pixels
from t2i.grid import make_grid, to_pil


def preview_grid(path: str | Path, out: str | Path, n: int = 32, cols: int = 8, size: int = 128) -> Path:
    """Write a grid of the first n readable images of a dataset, each with its first caption."""
    _, records, _ = list_records(Path(path))
    images, captions = [], []
    for record in records:
        try:
            images += to_pil(load_pixels(record.image, size)[None])
        except UNREADABLE:
            continue  # unreadable images are `t2i data check`'s business, not the preview's
        captions.append(record.captions[0])
        if len(images) == n:
            break
    if not images:
        raise ValueError(f"{path}: no readable images to preview")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    make_grid(images, captions, cols=cols, cell=size).save(out)
    return out
