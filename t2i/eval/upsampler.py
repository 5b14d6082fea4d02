"""`t2i eval upsampler`: a cascade's upsampler alone, on real low-resolution images, against bicubic upsampling.

Each image of a split is averaged down to the base model's size, then brought back to full size twice: bicubic,
and by the upsampler (reading it at the settings' noise level, prompted with the image's own first caption).
Both are scored against the original: PSNR, SSIM and, with an attribute classifier, its accuracy on each.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm import tqdm

from t2i.cascade.pipeline import CascadePipeline, bicubic, upsample
from t2i.cascade.settings import CascadeSettings
from t2i.cascade.train import low_resolution
from t2i.config import saved_split_fractions
from t2i.data.datasets import ImageCaptionDataset
from t2i.eval.autoencoder import classifier_accuracies, psnr, ssim
from t2i.eval.classifier import load_classifier
from t2i.grid import make_grid, to_pil


@torch.no_grad()
def evaluate_upsampler(
    model_dir: str | Path,
    data_dir: str | Path,
    split: str = "test",
    n: int = 256,
    out: str | Path | None = None,
    classifier_dir: str | Path | None = None,
    settings: CascadeSettings | None = None,
    batch_size: int = 32,
    seed: int = 0,
) -> dict:
    """PSNR, SSIM (and the classifier's accuracy) of bicubic and of the upsampler on the first n images of a
    split; writes a grid (bicubic, upsampler, originals) and metrics.json to `out`."""
    pipe = CascadePipeline.from_pretrained(model_dir)
    settings = (settings or pipe.defaults).check()
    classifier = load_classifier(classifier_dir) if classifier_dir else None
    fractions = saved_split_fractions(model_dir)
    data = ImageCaptionDataset(data_dir, pipe.image_size, split, random_caption=False, split_fractions=fractions)
    scores = {name: {"psnr": [], "ssim": [], "predicted": []} for name in ("bicubic", "upsampler", "originals")}
    labels, first = [], None
    for start in tqdm(range(0, min(n, len(data)), batch_size), desc=f"upsample {split}"):
        items = [data.item(i, 0) for i in range(start, min(start + batch_size, n, len(data)))]
        x = torch.stack([item["pixel_values"] for item in items])
        low = low_resolution(x, pipe.base.image_size)
        interpolated = bicubic(low, x.shape[-1])
        captions = [item["caption"] for item in items]
        upsampled = upsample(pipe.upsampler, low, captions, [""] * len(items), 1, settings, seed + start)
        outputs = {"bicubic": interpolated, "upsampler": upsampled.clamp(-1, 1).float(), "originals": x}
        for name, y in outputs.items():
            scores[name]["psnr"].append(psnr(x, y))
            scores[name]["ssim"].append(ssim(x, y))
            if classifier is not None:
                scores[name]["predicted"].append(classifier.predict(y)[0])
        labels.append(torch.stack([item["attributes"] for item in items]))
        first = first or [to_pil(y[:8]) for y in outputs.values()]
    metrics = {"split": split, "images": min(n, len(data)), "noise_level": settings.noise_level}
    for name in ("bicubic", "upsampler"):
        metrics[f"psnr_db_{name}"] = torch.cat(scores[name]["psnr"]).mean().item()
        metrics[f"ssim_{name}"] = torch.cat(scores[name]["ssim"]).mean().item()
    if classifier is not None:
        predictions = {name: score["predicted"] for name, score in scores.items()}
        metrics |= classifier_accuracies(classifier, predictions, torch.cat(labels), data.report.attribute_names)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        make_grid(sum(first, []), cols=len(first[0]), cell=128).save(out / "upsampled.png")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
