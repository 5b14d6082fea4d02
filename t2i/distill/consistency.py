"""Latent consistency distillation (LCM: Luo et al. 2023, after Song et al.'s consistency models), the math.

    x̂0(z_t, ε) = (z_t − √(1−ᾱ_t) ε) / √ᾱ_t                        the clean latent an ε prediction implies
    f(z_t, t) = c_skip(t) z_t + c_out(t) x̂0                       the consistency function (f = z at t = 0)
    ε^g = ε_u + g (ε_c − ε_u);  ẑ_s = √ᾱ_s x̂0(z_t, ε^g) + √(1−ᾱ_s) ε^g    the teacher's guided DDIM step t → s = t − k
    L = d(f_θ(z_t, t, g), f_θ⁻(ẑ_s, s, g)),  d(a, b) = √((a − b)² + c²) − c    pseudo-Huber, θ⁻ the target network

The student is the teacher's UNet with one more input, the guidance g as LCM's w-embedding (diffusers'
time_cond_proj_dim), so that one UNet evaluation replaces the guided pair; diffusers' LCMScheduler samples it.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel

SIGMA_DATA = 0.5  # c_skip and c_out's σ_data, and the timestep scaling: LCMScheduler's defaults
TIMESTEP_SCALING = 10.0


def student_unet(teacher: UNet2DConditionModel, guidance_dim: int) -> UNet2DConditionModel:
    """The teacher's architecture and weights plus the guidance input (its projection at zero: the student starts
    as the teacher, at every guidance)."""
    student = UNet2DConditionModel.from_config(teacher.config, time_cond_proj_dim=guidance_dim)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    if missing != ["time_embedding.cond_proj.weight"] or unexpected:
        raise ValueError(f"the teacher's UNet does not fit a student: missing {missing}, unexpected {unexpected}")
    torch.nn.init.zeros_(student.time_embedding.cond_proj.weight)
    return student.to(teacher.device)


def solver_timesteps(num_train_timesteps: int, solver_steps: int) -> torch.Tensor:
    """The teacher's ODE grid: t_n = n·k − 1 for n = 1 … N, k = T // N (LCMScheduler's own grid)."""
    k = num_train_timesteps // solver_steps
    return torch.arange(1, solver_steps + 1) * k - 1


def boundary_scalings(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """c_skip = σ_d² / ((s t)² + σ_d²), c_out = s t / √((s t)² + σ_d²), shaped to broadcast over latents."""
    scaled = (t.float() * TIMESTEP_SCALING).view(-1, 1, 1, 1)
    c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
    c_out = scaled / (scaled**2 + SIGMA_DATA**2).sqrt()
    return c_skip, c_out


def _alpha_bar(alphas_cumprod: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return alphas_cumprod.to(t.device)[t].float().view(-1, 1, 1, 1)


def predicted_x0(z_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """x̂0 = (z_t − √(1−ᾱ_t) ε) / √ᾱ_t."""
    a = _alpha_bar(alphas_cumprod, t)
    return (z_t - (1 - a).sqrt() * eps) / a.sqrt()


def consistency_output(z_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """f(z_t, t) = c_skip(t) z_t + c_out(t) x̂0(z_t, ε)."""
    c_skip, c_out = boundary_scalings(t)
    return c_skip * z_t + c_out * predicted_x0(z_t, eps, t, alphas_cumprod)


def ddim_step(z_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, s: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """ẑ_s = √ᾱ_s x̂0 + √(1−ᾱ_s) ε: the deterministic DDIM step from t to s < t."""
    a_s = _alpha_bar(alphas_cumprod, s)
    return a_s.sqrt() * predicted_x0(z_t, eps, t, alphas_cumprod) + (1 - a_s).sqrt() * eps


def pseudo_huber(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """d(a, b) = √((a − b)² + c²) − c per element, averaged: L2 near 0, L1 far from it (no LPIPS weights)."""
    return (((a.float() - b.float()) ** 2 + c**2).sqrt() - c).mean()


@torch.no_grad()
def update_target(target: torch.nn.Module, online: torch.nn.Module, decay: float) -> None:
    """θ⁻ ← μ θ⁻ + (1 − μ) θ."""
    for kept, trained in zip(target.parameters(), online.parameters(), strict=True):
        kept.lerp_(trained, 1 - decay)
