"""The attribute classifier: a small CNN that says which attributes a face image shows.

Evaluation's referee. It is trained on real images only (the train split), shares no code or weights
with the generator, and is judged on the test split. Its penultimate features also serve as the
feature space of the Fréchet distance (`t2i.eval.fidelity`).

    classifier/
      classifier.safetensors   the weights
      classifier.json          attribute list, image size, width, training config, test accuracy
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from t2i.data.check import ScanReport, scan_dataset
from t2i.data.datasets import ImageCaptionDataset


@dataclass
class ClassifierConfig:
    image_size: int = 64  # images are resized to this side before classification
    width: int = 32  # channels of the first stage; stages double it (features: 8 × width)
    epochs: int = 6  # passes over the train split
    batch_size: int = 64
    lr: float = 2e-3  # AdamW peak learning rate (one-cycle: warm-up then cosine to 0)
    weight_decay: float = 1e-4
    shift: int = 4  # random translation of up to ±shift pixels as augmentation
    flip: bool = True  # ... and random horizontal flips (off for data whose attributes name a side)
    seed: int = 0


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AttributeClassifier(nn.Module):
    """Four conv stages (each halves the side), global average pooling, one linear logit per attribute."""

    def __init__(self, attributes: list[str], width: int = 32, image_size: int = 64):
        super().__init__()
        self.attributes, self.image_size = list(attributes), image_size
        w = width
        self.body = nn.Sequential(
            _conv(3, w),
            nn.MaxPool2d(2),
            _conv(w, 2 * w),
            _conv(2 * w, 2 * w),
            nn.MaxPool2d(2),
            _conv(2 * w, 4 * w),
            _conv(4 * w, 4 * w),
            nn.MaxPool2d(2),
            _conv(4 * w, 8 * w),
            _conv(8 * w, 8 * w),
        )
        self.head = nn.Linear(8 * w, len(self.attributes))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 8·width) penultimate features."""
        return self.body(images).mean((2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Attribute values (N, A) in {1, -1} and features (N, F), in eval mode, resized to the trained size."""
        self.eval()
        values, features = [], []
        for chunk in images.split(batch_size):
            if chunk.shape[-1] != self.image_size:
                chunk = F.interpolate(chunk, size=self.image_size, mode="bilinear", antialias=True)
            f = self.features(chunk.float())
            values.append(torch.where(self.head(f) > 0, 1, -1))
            features.append(f)
        return torch.cat(values), torch.cat(features)


def load_split(
    data_dir: str | Path, split: str, size: int, report: ScanReport
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """A whole split of a scanned dataset in memory: uint8 images (N, 3, size, size), attributes (N, A) in
    {1, -1, 0} and their names."""
    data = ImageCaptionDataset(data_dir, size, split, random_caption=False, report=report)
    items = [data.item(i, 0) for i in tqdm(range(len(data)), desc=f"load {split}", leave=False)]
    images = torch.stack([((it["pixel_values"] + 1) * 127.5).round().to(torch.uint8) for it in items])
    attributes = torch.stack([it["attributes"] for it in items])
    return images, attributes, data.report.attribute_names


def to_unit(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1


def augment(images: torch.Tensor, shift: int, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """Random horizontal flip (when `flip`) and translation by up to ±shift pixels (edge padding)."""
    n, _, h, w = images.shape
    flipped = (torch.rand(n, generator=generator) < 0.5) & flip
    images = torch.where(flipped[:, None, None, None], images.flip(3), images)
    if shift:
        padded = F.pad(images, (shift,) * 4, mode="replicate")
        dx, dy = torch.randint(0, 2 * shift + 1, (2, n), generator=generator)
        images = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    return images


def rendered_attributes(attributes: torch.Tensor, names: tuple[str, ...]) -> list[str]:
    """The attribute columns (named `names`) that take both values in a split (the synthetic faces write -1 for
    the rest)."""
    present = ((attributes == 1).any(0) & (attributes == -1).any(0)).tolist()
    return [name for name, keep in zip(names, present, strict=True) if keep]


def label_columns(labels: torch.Tensor, names: tuple[str, ...], wanted: list[str]) -> torch.Tensor:
    """The columns of `labels` (named `names`) for the attributes `wanted`, in that order."""
    return labels[:, [names.index(a) for a in wanted]]


def per_attribute_accuracy(
    model: AttributeClassifier, images: torch.Tensor, attributes: torch.Tensor, names: tuple[str, ...]
) -> dict:
    """Share of images whose predicted value equals the label, per attribute (labels of 0 are skipped)."""
    predicted, _ = model.predict(images)
    labels = label_columns(attributes, names, model.attributes)
    known = labels != 0
    correct = (predicted == labels) & known
    return {a: (correct[:, j].sum() / known[:, j].sum()).item() for j, a in enumerate(model.attributes)}


def train_classifier(data_dir: str | Path, out: str | Path, config: ClassifierConfig | None = None) -> dict:
    """Train on the train split, measure per-attribute accuracy on the test split, save to out."""
    config = config or ClassifierConfig()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    report = scan_dataset(data_dir, config.image_size)  # once, for both splits
    train_images, train_attributes, names = load_split(data_dir, "train", config.image_size, report)
    test_images, test_attributes, _ = load_split(data_dir, "test", config.image_size, report)
    attributes = rendered_attributes(train_attributes, names)
    if not attributes:
        raise ValueError(f"{data_dir}: the train split has no attribute that takes both values; nothing to learn")
    targets = label_columns(train_attributes, names, attributes).float()  # 1 / -1 / 0 (unknown, masked out)

    model = AttributeClassifier(attributes, config.width, config.image_size)
    steps_per_epoch = max(1, len(train_images) // config.batch_size)
    total = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=total, pct_start=0.1)
    model.train()
    bar = tqdm(total=total, desc="classifier")
    epoch_losses = []
    for _ in range(config.epochs):
        losses = []
        order = torch.randperm(len(train_images), generator=generator)
        for step in range(steps_per_epoch):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            x = augment(to_unit(train_images[index]), config.shift, generator, config.flip)
            y = targets[index]
            # binary cross-entropy per attribute, on labels mapped {−1, 1} -> {0, 1}; unknown labels weigh 0
            loss = F.binary_cross_entropy_with_logits(model(x), (y + 1) / 2, weight=(y != 0).float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        epoch_losses.append(sum(losses) / len(losses))
        if not math.isfinite(epoch_losses[-1]):
            raise RuntimeError(f"classifier training diverged (mean loss {epoch_losses[-1]}); lower the learning rate")
    bar.close()

    accuracy = per_attribute_accuracy(model, to_unit(test_images), test_attributes, names)
    info = {
        "attributes": attributes,
        "image_size": config.image_size,
        "width": config.width,
        "config": dataclasses.asdict(config),
        "train_images": len(train_images),
        "test_images": len(test_images),
        "epoch_losses": epoch_losses,
        "test_accuracy": accuracy,
        "test_mean_accuracy": sum(accuracy.values()) / len(accuracy),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), out / "classifier.safetensors")
    (out / "classifier.json").write_text(json.dumps(info, indent=2))
    return info


def load_classifier(path: str | Path) -> AttributeClassifier:
    """A classifier folder written by `train_classifier`, in eval mode."""
    path = Path(path)
    if not (path / "classifier.json").is_file() or not (path / "classifier.safetensors").is_file():
        raise FileNotFoundError(
            f"--classifier {path}: expected classifier.json and classifier.safetensors "
            "(train one with `t2i eval train-classifier --data DIR --out DIR`)"
        )
    info = json.loads((path / "classifier.json").read_text())
    model = AttributeClassifier(info["attributes"], info["width"], info["image_size"])
    model.load_state_dict(load_file(path / "classifier.safetensors"))
    return model.eval()
