"""Fidelity: how close the distribution of generated images is to real ones.

Fréchet distance between Gaussians fitted to features (the attribute classifier's penultimate layer by
default; Inception-v3 pool features, i.e. standard FID, when the user has the weights file):
    FD = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½)
It is biased upwards for small samples, so compare only figures computed with the same sample sizes;
the real-train versus real-test distance at the same sizes is the floor a perfect generator reaches.
"""

from __future__ import annotations

from pathlib import Path

import torch

INCEPTION_WEIGHTS_HINT = (
    "standard FID/KID need the Inception-v3 weights of torch-fidelity, which this tool never downloads: fetch "
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth "
    "on a machine with internet, then pass --inception-weights FILE (and pip install 't2i[fid]')"
)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FD between Gaussians fitted to feature rows a (N, F) and b (M, F), in float64; NaN below 2 rows each."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # Tr (Σ_a Σ_b)^½ = Σ √λ of the symmetric PSD matrix Σ_a^½ Σ_b Σ_a^½ (same eigenvalues as Σ_a Σ_b)
    eigenvalues, vectors = torch.linalg.eigh(cov_a)
    sqrt_a = vectors @ torch.diag(eigenvalues.clamp_min(0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def inception_fid_kid(real: torch.Tensor, fake: torch.Tensor, weights: str | Path) -> dict:
    """Standard FID and KID (torchmetrics over torch-fidelity's Inception-v3) from a local weights file.

    real, fake: (N, 3, H, W) in [-1, 1]. KID's subset size is capped by the smaller sample.
    """
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"--inception-weights {weights}: no such file; {INCEPTION_WEIGHTS_HINT}")
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError:
        raise ImportError("standard FID/KID need torchmetrics and torch-fidelity: pip install 't2i[fid]'") from None

    def to_uint8(x):
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    subset = min(len(real), len(fake), 1000)
    fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights))
    kid = KernelInceptionDistance(feature=2048, subset_size=subset, feature_extractor_weights_path=str(weights))
    for metric in (fid, kid):
        metric.update(to_uint8(real), real=True)
        metric.update(to_uint8(fake), real=False)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}
