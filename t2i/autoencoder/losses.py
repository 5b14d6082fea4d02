"""Stage 1 losses: reconstruction, KL or VQ, a PatchGAN with hinge loss and LDM's adaptive weight,
and an optional LPIPS perceptual term loaded from a local file (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor, l1: float, l2: float) -> torch.Tensor:
    """Σ_pixels (l1·|x − x̂| + l2·(x − x̂)²), averaged over the batch (LDM sums per image)."""
    diff = (x.float() - x_hat.float()).flatten(1)
    return (l1 * diff.abs() + l2 * diff.square()).sum(1).mean()


class PatchDiscriminator(nn.Module):
    """pix2pix/LDM PatchGAN: strided 4×4 convs; one real/fake logit per overlapping patch."""

    def __init__(self, channels: int = 64, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = channels
        for i in range(1, layers + 1):
            out = channels * min(2**i, 8)
            stride = 2 if i < layers else 1
            blocks += [nn.Conv2d(width, out, 4, stride, 1, bias=False), nn.GroupNorm(32, out), nn.LeakyReLU(0.2)]
            width = out
        blocks.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """½ (E[relu(1 − D(x))] + E[relu(1 + D(x̂))])."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def adaptive_weight(nll: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """LDM's balance: ‖∇_last nll‖ / (‖∇_last g_loss‖ + 1e-4), clamped to [0, 1e4], no gradient."""
    nll_grad = torch.autograd.grad(nll, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    return (nll_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0.0, 1e4).detach()


class LPIPS(nn.Module):
    """LPIPS (Zhang et al. 2018) over VGG16 features, with the module names of the `lpips` package.

    Weights come only from a local safetensors file holding `lpips.LPIPS(net="vgg").state_dict()`
    (keys net.slice1.0.weight ... lin4.model.1.weight); nothing is ever downloaded.
    """

    _VGG = [[64, 64], ["M", 128, 128], ["M", 256, 256, 256], ["M", 512, 512, 512], ["M", 512, 512, 512]]

    def __init__(self, weights: str | Path):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        index, width = 0, 3
        self.net = nn.Module()
        for s, config in enumerate(self._VGG, start=1):
            layers = nn.Sequential()
            for item in config:
                if item == "M":
                    layers.add_module(str(index), nn.MaxPool2d(2, 2))
                    index += 1
                    continue
                layers.add_module(str(index), nn.Conv2d(width, item, 3, padding=1))
                layers.add_module(str(index + 1), nn.ReLU())
                index, width = index + 2, item
            setattr(self.net, f"slice{s}", layers)
        for i, c in enumerate((64, 128, 256, 512, 512)):
            lin = nn.Module()
            lin.model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))
            setattr(self, f"lin{i}", lin)
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"LPIPS weights not found: {path} (autoencoder_training.lpips_weights)")
        try:
            weights = load_file(path)
        except Exception as error:  # safetensors' own error type: a pickle, a truncated file
            raise ValueError(f"{path}: not a safetensors file (pickled weights are never loaded): {error}") from None
        state = {k: v for k, v in weights.items() if k not in ("scaling_layer.shift", "scaling_layer.scale")}
        self.load_state_dict(state, strict=False)
        missing = set(self.state_dict()) - set(state) - {"shift", "scale"}
        if missing:
            raise ValueError(f"{path}: not an LPIPS-VGG state dict; missing {sorted(missing)[:4]} ...")
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image perceptual distance of images in [-1, 1]."""
        h_x, h_y = (x - self.shift) / self.scale, (y - self.shift) / self.scale
        total = 0.0
        for s in range(5):
            block = getattr(self.net, f"slice{s + 1}")
            h_x, h_y = block(h_x), block(h_y)
            n_x = h_x / (h_x.square().sum(1, keepdim=True).sqrt() + 1e-10)
            n_y = h_y / (h_y.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{s}").model((n_x - n_y).square()).mean((2, 3))
        return total.flatten()
