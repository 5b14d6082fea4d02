"""`t2i eval autoencoder`: PSNR and SSIM on a split, a reconstruction grid, codebook usage (VQ and dVAE)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from tqdm import tqdm

from t2i.autoencoder.model import encode, load_autoencoder
from t2i.autoencoder.tokens import num_codes, quantize
from t2i.config import saved_split_fractions
from t2i.data.datasets import ImageCaptionDataset
from t2i.eval.classifier import label_columns, load_classifier
from t2i.grid import make_grid, to_pil


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per image, on [0, 1] pixels: 10·log10(1 / MSE)."""
    mse = ((x - y) / 2).square().flatten(1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per image SSIM (Wang et al. 2004) on [0, 1] pixels: 11×11 Gaussian window, σ = 1.5, per channel."""
    x, y = (x.double() + 1) / 2, (y.double() + 1) / 2  # float64: var = E[x²] − μ² cancels badly in float32
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    g = (g / g.sum()).to(x.device)
    window = (g[:, None] * g[None, :]).expand(x.shape[1], 1, 11, 11)

    def blur(t):
        return F.conv2d(t, window, groups=x.shape[1])

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).float()


def classifier_accuracies(
    classifier, predictions: dict[str, list[torch.Tensor]], labels: torch.Tensor, names: tuple[str, ...]
) -> dict:
    """classifier_accuracy_NAME (and _per_attribute) of each name's predicted batches against the dataset's
    attribute labels (columns `names`; ±1, 0 = unlabelled, left out)."""
    truth = label_columns(labels, names, classifier.attributes)
    known = (truth != 0).float()
    metrics = {}
    for name, predicted in predictions.items():
        correct = (torch.cat(predicted) == truth).float() * known
        metrics[f"classifier_accuracy_{name}"] = (correct.sum() / known.sum()).item()
        per_attribute = (correct.sum(0) / known.sum(0)).tolist()
        metrics[f"classifier_accuracy_{name}_per_attribute"] = dict(
            zip(classifier.attributes, per_attribute, strict=True)
        )
    return metrics


@torch.no_grad()
def evaluate_autoencoder(
    model_dir: str | Path,
    data_dir: str | Path,
    split: str = "val",
    out: str | Path | None = None,
    batch_size: int = 64,
    classifier_dir: str | Path | None = None,
) -> dict:
    """Reconstruct every image of a split; mean PSNR/SSIM (and the codebook's usage and perplexity). Writes a
    grid and JSON to out.

    With an attribute classifier: its accuracy against the dataset's labels on the originals and on the
    reconstructions, per attribute (small details such as earrings must survive the round trip).
    """
    model = load_autoencoder(model_dir)
    classifier = load_classifier(classifier_dir) if classifier_dir else None
    size = model.config.sample_size
    fractions = saved_split_fractions(model_dir)  # the split the autoencoder was trained with
    data = ImageCaptionDataset(data_dir, size, split, random_caption=False, split_fractions=fractions)
    psnrs, ssims, codes, originals, reconstructions, labels = [], [], [], [], [], []
    first = None
    for start in tqdm(range(0, len(data), batch_size), desc=f"eval {split}"):
        items = [data.item(i, 0) for i in range(start, min(start + batch_size, len(data)))]
        x = torch.stack([item["pixel_values"] for item in items])
        z = encode(model, x)
        x_hat = model.decode(z).sample.clamp(-1, 1)
        psnrs.append(psnr(x, x_hat))
        ssims.append(ssim(x, x_hat))
        if not isinstance(model, AutoencoderKL):
            codes.append(quantize(model, z).flatten())
        if first is None:
            first = (x[:8], x_hat[:8])
        if classifier is not None:
            originals.append(classifier.predict(x)[0])
            reconstructions.append(classifier.predict(x_hat)[0])
            labels.append(torch.stack([item["attributes"] for item in items]))
    metrics = {
        "split": split,
        "images": len(data),
        "psnr_db": torch.cat(psnrs).mean().item(),
        "ssim": torch.cat(ssims).mean().item(),
    }
    if codes:
        counts = torch.bincount(torch.cat(codes), minlength=num_codes(model)).float()
        p = counts / counts.sum()
        metrics["codebook_perplexity"] = torch.exp(-(p[p > 0] * p[p > 0].log()).sum()).item()
        metrics["codebook_used_share"] = (counts > 0).float().mean().item()
    if classifier is not None:
        predictions = {"originals": originals, "reconstructions": reconstructions}
        metrics |= classifier_accuracies(classifier, predictions, torch.cat(labels), data.report.attribute_names)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        make_grid(to_pil(first[0]) + to_pil(first[1]), cols=len(first[0]), cell=128).save(out / "reconstructions.png")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
