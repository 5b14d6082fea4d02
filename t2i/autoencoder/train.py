"""Stage 1 training: an autoencoder x -> z -> x̂ with reconstruction + KL (or VQ, or the discrete VAE's
Gumbel-softmax relaxation and KL to the uniform prior) + PatchGAN losses.

Readable top to bottom: build everything, resume from the latest checkpoint if there is one, loop,
write grids / curves / checkpoints as it goes, then measure the latent scaling factor and save a
diffusers folder (`OUT/vae/`) that `AutoencoderKL.from_pretrained` loads.
"""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate.utils import extract_model_from_parallel
from diffusers import VQModel
from diffusers.optimization import get_scheduler

from t2i.autoencoder.codebook import DeadCodeRestarts
from t2i.autoencoder.dvae import DiscreteVAE, gumbel_temperature, kl_to_uniform
from t2i.autoencoder.losses import LPIPS, PatchDiscriminator, adaptive_weight, hinge_d_loss, reconstruction_loss
from t2i.autoencoder.model import build_autoencoder, encode, reconstruct
from t2i.config import TOKEN_FAMILIES, Config, diffusers_schedule_name, require_family, save_config, validate
from t2i.data.datasets import EpochStream, ImageCaptionDataset, split_of, step_batches
from t2i.grid import make_grid, to_pil
from t2i.training.loop import GlobalRNG, Run, TrainingTask, start_run, train


def autoencoder_losses(model, x: torch.Tensor, config: Config, lpips: LPIPS | None, step: int = 0):
    """Forward pass and the non-adversarial loss terms (sums per image, averaged over the batch)."""
    tc = config.autoencoder_training
    if isinstance(model, VQModel):
        h = model.encode(x).latents
        out = model.decode(h)  # quantizes; commit_loss = commitment + β·codebook (means over latents)
        x_hat, regularizer = out.sample, out.commit_loss.mean() * h[0].numel()
    elif isinstance(extract_model_from_parallel(model), DiscreteVAE):  # DDP wraps it with several processes
        x_hat, logits = model(x, gumbel_temperature_at(step, tc))  # the decoder of a Gumbel-softmax sample
        warmup = min(step / tc.dvae_kl_warmup, 1.0) if tc.dvae_kl_warmup else 1.0
        regularizer = warmup * tc.dvae_kl_weight * kl_to_uniform(logits)  # β_t KL(q(t|x) ‖ U(K)), summed per image
    else:
        posterior = model.encode(x).latent_dist
        x_hat = model.decode(posterior.sample()).sample  # z = μ + σ·ε
        regularizer = tc.kl_weight * posterior.kl().mean()  # KL(N(μ, σ²) || N(0, I)), summed per image
    nll = reconstruction_loss(x, x_hat, tc.l1_weight, tc.l2_weight)
    if lpips is not None:
        nll = nll + tc.lpips_weight * lpips(x.float(), x_hat.float()).mean() * x[0].numel()
    return x_hat, nll, regularizer


def gumbel_temperature_at(step: int, tc) -> float:
    """The dVAE's τ at `step` (annealed over gumbel_anneal_steps, or the whole run)."""
    return gumbel_temperature(step, tc.gumbel_tau_start, tc.gumbel_tau_end, tc.gumbel_anneal_steps or tc.steps)


@torch.no_grad()
def measure_scaling_factor(model, dataset: ImageCaptionDataset, n: int, batch_size: int = 64) -> float:
    """s = 1 / std(z) over n training images, so that s·z has unit variance (SD's 0.18215)."""
    latents = []
    for start in range(0, min(n, len(dataset)), batch_size):
        idx = range(start, min(start + batch_size, n, len(dataset)))
        x = torch.stack([dataset.item(i, 0)["pixel_values"] for i in idx]).to(model.device)
        latents.append(encode(model, x).float().cpu())
    return 1.0 / torch.cat(latents).std().item()


@torch.no_grad()
def reconstruction_grid(model, x: torch.Tensor, path: Path) -> None:
    """Inputs on the top row, reconstructions below."""
    make_grid(to_pil(x) + to_pil(reconstruct(model, x)), cols=len(x), cell=96).save(path)


class AutoencoderTask(TrainingTask):
    """The autoencoder and its PatchGAN discriminator, each with Adam (LDM's betas), warm-up then cosine/constant."""

    name, model_folder, curves, shown = "autoencoder", "vae", ("rec", "reg", "g", "d"), ("rec",)
    title = "autoencoder"

    def __init__(self, config: Config, run: Run, data_dir: str | Path):
        self.config, self.tc, self.run = config, config.autoencoder_training, run
        self._data(data_dir)
        self._models()

    def _data(self, data_dir: str | Path) -> None:
        """The train split as an endless, position-keyed stream; a fixed validation batch for the grids."""
        tc, size, fractions = self.tc, self.config.data.image_size, self.config.data.split_fractions
        self.data = ImageCaptionDataset(
            data_dir, size, "train", self.config.data.flip, seed=tc.seed, split_fractions=fractions
        )
        has_val = any(split_of(r.id, fractions) == "val" for r in self.data.report.records)
        if not has_val:
            self.run.accelerator.print(
                "note: no validation images (data.split_fractions); the grids show training images"
            )
        split = "val" if has_val else "train"
        val = ImageCaptionDataset(data_dir, size, split, report=self.data.report, split_fractions=fractions)
        self.val_x = torch.stack([val.item(i, 0)["pixel_values"] for i in range(min(8, len(val)))])

    def _models(self) -> None:
        tc, device = self.tc, self.run.device
        self.model = build_autoencoder(self.config.autoencoder, self.config.data.image_size)
        self.disc = PatchDiscriminator(tc.disc_channels, tc.disc_layers)
        self.lpips = LPIPS(tc.lpips_weights) if tc.lpips_weights else None
        if tc.channels_last:
            self.model.to(memory_format=torch.channels_last)
            self.disc.to(memory_format=torch.channels_last)
        fused = device.type == "cuda" or None  # one kernel for all parameters
        self.opt_ae = torch.optim.Adam(self.model.parameters(), lr=tc.lr, betas=(0.5, 0.9), fused=fused)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=tc.lr, betas=(0.5, 0.9), fused=fused)
        self.lr_schedule = get_scheduler(
            diffusers_schedule_name(tc.lr_schedule, "autoencoder_training"),
            self.opt_ae,
            num_warmup_steps=tc.warmup_steps,
            num_training_steps=tc.steps,
        )
        self.parts = {
            "model": self.model,
            "disc": self.disc,
            "opt_ae": self.opt_ae,
            "opt_d": self.opt_d,
            "schedule": self.lr_schedule,
            "rng": GlobalRNG(),
        }
        self.restarts = None
        if isinstance(self.model, VQModel):
            self.model.quantize.beta = tc.vq_commitment
            if tc.vq_restart_every:
                self.restarts = self.parts["code_uses"] = DeadCodeRestarts(self.model, tc.vq_restart_every, tc.steps)
                self.curves = (*self.curves, "codes")

    def prepare(self, run: Run, step: int) -> None:
        tc, accelerator = self.tc, run.accelerator
        if tc.compile:  # in place (the state dicts keep their keys); encode and decode are not forward()
            for module in (self.model.encoder, self.model.decoder, self.disc):
                module.compile()
        self.wrapped, self.wrapped_disc = accelerator.prepare(self.model, self.disc, self.opt_ae, self.opt_d)[:2]
        if self.lpips is not None:
            self.lpips.to(run.device)
        loader = torch.utils.data.DataLoader(
            EpochStream(self.data, tc.seed),
            batch_sampler=step_batches(step, tc.batch_size, accelerator.process_index, accelerator.num_processes),
            num_workers=self.config.data.num_workers,
            generator=torch.Generator(),  # its own: creating the iterator must not draw from the global RNG
            pin_memory=run.device.type == "cuda",
        )
        self.batches = iter(loader)
        self.images_per_step = tc.batch_size * accelerator.num_processes

    def train_step(self, step: int) -> dict:
        """The generator step: nll + regularizer (+ λ·adaptive weight · −D(x̂) once the GAN is on); then the
        discriminator step: hinge loss on real x versus detached x̂."""
        tc, accelerator = self.tc, self.run.accelerator
        x = next(self.batches)["pixel_values"].to(self.run.device, non_blocking=True)
        gan_on = step >= tc.disc_start
        with accelerator.autocast():
            x_hat, nll, regularizer = autoencoder_losses(self.wrapped, x, self.config, self.lpips, step)
            loss = nll + regularizer
            g_loss = torch.zeros((), device=x.device)
            if gan_on:
                g_loss = -self.wrapped_disc(x_hat).mean()
                loss = loss + tc.disc_weight * adaptive_weight(nll, g_loss, self.model.decoder.conv_out.weight) * g_loss
        self.opt_ae.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        self.opt_ae.step()
        self.lr_schedule.step()
        d_loss = torch.zeros((), device=x.device)
        if gan_on:
            with accelerator.autocast():
                d_loss = hinge_d_loss(self.wrapped_disc(x), self.wrapped_disc(x_hat.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            accelerator.backward(d_loss)
            self.opt_d.step()
        losses = {"rec": nll / x[0].numel(), "reg": regularizer, "g": g_loss, "d": d_loss}
        if self.restarts is not None:
            losses["codes"] = self.restarts.codes_in_batch
            if restarted := self.restarts.after_step(step, accelerator):
                losses["restarted"] = (torch.tensor(float(restarted), device=x.device), 1)
        return losses

    def sample(self, step: int, folder: Path) -> None:
        reconstruction_grid(self.model.eval(), self.val_x.to(self.run.device), folder / f"recon-{step:07d}.png")
        self.model.train()

    def save_model(self, folder: Path) -> None:
        """The latent scale s = 1/std(z), stored in the model config, then a diffusers folder."""
        self.model.eval()
        scale = measure_scaling_factor(self.model, self.data, self.tc.scale_samples)
        self.model.register_to_config(scaling_factor=scale)
        self.model.save_pretrained(folder, safe_serialization=True)
        save_config(self.config, folder / "t2i_config.yaml")
        self.run.accelerator.print(f"latent scaling factor {scale:.5f}; saved {folder}")
        self.model.train()  # training may go on (a snapshot)


def train_autoencoder(config: Config, data_dir: str | Path, out_dir: str | Path) -> Path:
    """Train (or resume) an autoencoder; returns the saved model folder OUT/vae."""
    validate(config)
    if config.family not in ("latent-diffusion", *TOKEN_FAMILIES):  # the families on an autoencoder
        require_family(config, "latent-diffusion")  # names the command that trains this config's family
    tc = config.autoencoder_training
    run = start_run(config, tc, out_dir, precision=tc.mixed_precision)
    return train(run, AutoencoderTask(config, run, data_dir))
