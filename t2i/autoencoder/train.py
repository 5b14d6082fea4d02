"""Stage 1 training: an autoencoder x -> z -> x̂ with reconstruction + KL (or VQ) + PatchGAN losses.

Readable top to bottom: build everything, resume from the latest checkpoint if there is one, loop,
write grids / curves / checkpoints as it goes, then measure the latent scaling factor and save a
diffusers folder (`OUT/vae/`) that `AutoencoderKL.from_pretrained` loads.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers import VQModel
from diffusers.optimization import get_scheduler
from tqdm import tqdm

from t2i.autoencoder.losses import LPIPS, PatchDiscriminator, adaptive_weight, hinge_d_loss, reconstruction_loss
from t2i.autoencoder.model import build_autoencoder, encode, reconstruct
from t2i.checkpoint import StopOnInterrupt, resume_state, save_checkpoint
from t2i.config import Config, diffusers_schedule_name, require_family, save_config, validate
from t2i.data.datasets import EpochStream, ImageCaptionDataset, split_of, step_batches
from t2i.devices import process_state, resolve_precision, use_fast_gpu_math
from t2i.grid import make_grid, to_pil
from t2i.plots import plot_losses

AUTOENCODER_FAMILIES = ("latent-diffusion", "vq-transformer")  # the families whose models sit on an autoencoder


def autoencoder_losses(model, x: torch.Tensor, config: Config, lpips: LPIPS | None):
    """Forward pass and the non-adversarial loss terms (sums per image, averaged over the batch)."""
    tc = config.autoencoder_training
    if isinstance(model, VQModel):
        h = model.encode(x).latents
        out = model.decode(h)  # quantizes; commit_loss = codebook + β·commitment (means over latents)
        x_hat, regularizer = out.sample, out.commit_loss.mean() * h[0].numel()
    else:
        posterior = model.encode(x).latent_dist
        x_hat = model.decode(posterior.sample()).sample  # z = μ + σ·ε
        regularizer = tc.kl_weight * posterior.kl().mean()  # KL(N(μ, σ²) || N(0, I)), summed per image
    nll = reconstruction_loss(x, x_hat, tc.l1_weight, tc.l2_weight)
    if lpips is not None:
        nll = nll + tc.lpips_weight * lpips(x.float(), x_hat.float()).mean() * x[0].numel()
    return x_hat, nll, regularizer


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


def train_autoencoder(config: Config, data_dir: str | Path, out_dir: str | Path) -> Path:
    """Train (or resume) an autoencoder; returns the saved model folder OUT/vae."""
    validate(config)
    if config.family not in AUTOENCODER_FAMILIES:
        require_family(config, "latent-diffusion")  # names the command that trains this config's family
    tc, size = config.autoencoder_training, config.data.image_size
    out = Path(out_dir)
    for sub in ("checkpoints", "samples", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    precision = resolve_precision(tc.mixed_precision, process_state().device)
    accelerator = Accelerator(mixed_precision=precision, log_with="tensorboard", project_dir=out / "logs")
    device = accelerator.device
    if device.type == "cuda":
        use_fast_gpu_math()
    set_seed(tc.seed)
    save_config(config, out / "config.yaml")

    # data: train split as an endless, position-keyed stream; a fixed validation batch for the grids
    data = ImageCaptionDataset(
        data_dir, size, "train", config.data.flip, seed=tc.seed, split_fractions=config.data.split_fractions
    )
    fractions = config.data.split_fractions
    has_val = any(split_of(r.id, fractions) == "val" for r in data.report.records)
    if not has_val:
        accelerator.print("note: no validation images (data.split_fractions); the grids show training images")
    val = ImageCaptionDataset(
        data_dir, size, "val" if has_val else "train", report=data.report, split_fractions=fractions
    )
    val_x = torch.stack([val.item(i, 0)["pixel_values"] for i in range(min(8, len(val)))])

    # models and optimizers (Adam with LDM's betas), linear warm-up then cosine or constant LR
    model = build_autoencoder(config.autoencoder, size)
    disc = PatchDiscriminator(tc.disc_channels, tc.disc_layers)
    lpips = LPIPS(tc.lpips_weights) if tc.lpips_weights else None
    if tc.channels_last:
        model.to(memory_format=torch.channels_last)
        disc.to(memory_format=torch.channels_last)
    fused = device.type == "cuda" or None  # one kernel for all parameters
    opt_ae = torch.optim.Adam(model.parameters(), lr=tc.lr, betas=(0.5, 0.9), fused=fused)
    opt_d = torch.optim.Adam(disc.parameters(), lr=tc.lr, betas=(0.5, 0.9), fused=fused)
    schedule = get_scheduler(
        diffusers_schedule_name(tc.lr_schedule, "autoencoder_training"),
        opt_ae,
        num_warmup_steps=tc.warmup_steps,
        num_training_steps=tc.steps,
    )

    # resume: model, discriminator, optimizers, LR schedule, RNG, loss history and step
    step, history = 0, []
    resumed = resume_state(out / "checkpoints")
    if resumed:
        checkpoint, state = resumed
        model.load_state_dict(state["model"])
        disc.load_state_dict(state["disc"])
        opt_ae.load_state_dict(state["opt_ae"])
        opt_d.load_state_dict(state["opt_d"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        step, history = state["step"], state["history"]
        accelerator.print(f"resumed from {checkpoint} at step {step}")

    if tc.compile:  # in place (the state dicts keep their keys); encode and decode are not forward()
        for module in (model.encoder, model.decoder, disc):
            module.compile()
    model, disc, opt_ae, opt_d = accelerator.prepare(model, disc, opt_ae, opt_d)
    if lpips is not None:
        lpips.to(device)
    loader = torch.utils.data.DataLoader(
        EpochStream(data, tc.seed),
        batch_sampler=step_batches(step, tc.batch_size, accelerator.process_index, accelerator.num_processes),
        num_workers=config.data.num_workers,
        generator=torch.Generator(),  # its own: creating the iterator must not draw from the global RNG
        pin_memory=device.type == "cuda",
    )
    batches = iter(loader)
    ae = accelerator.unwrap_model(model)
    last_layer = ae.decoder.conv_out.weight
    accelerator.init_trackers("autoencoder")

    def save(step: int) -> None:
        if accelerator.is_main_process:
            state = {
                "step": step,
                "history": history,
                "rng": torch.get_rng_state(),
                "model": ae.state_dict(),
                "disc": accelerator.unwrap_model(disc).state_dict(),
                "opt_ae": opt_ae.state_dict(),
                "opt_d": opt_d.state_dict(),
                "schedule": schedule.state_dict(),
            }
            save_checkpoint(out / "checkpoints", step, state, tc.keep_checkpoints)

    progress = tqdm(total=tc.steps, initial=step, desc="autoencoder", disable=not accelerator.is_main_process)
    tick, seen = time.perf_counter(), 0
    with StopOnInterrupt(enabled=accelerator.num_processes == 1) as stop:  # Ctrl-C: checkpoint, then stop
        while step < tc.steps:
            x = next(batches)["pixel_values"].to(device, non_blocking=True)
            gan_on = step >= tc.disc_start

            # generator step: nll + regularizer (+ λ·adaptive weight · −D(x̂) once the GAN is on)
            with accelerator.autocast():
                x_hat, nll, regularizer = autoencoder_losses(model, x, config, lpips)
                loss = nll + regularizer
                g_loss = torch.zeros((), device=x.device)
                if gan_on:
                    g_loss = -disc(x_hat).mean()
                    weight = tc.disc_weight * adaptive_weight(nll, g_loss, last_layer)
                    loss = loss + weight * g_loss
            opt_ae.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            opt_ae.step()
            schedule.step()

            # discriminator step: hinge loss on real x versus detached x̂
            d_loss = torch.zeros((), device=x.device)
            if gan_on:
                with accelerator.autocast():
                    d_loss = hinge_d_loss(disc(x), disc(x_hat.detach()))
                opt_d.zero_grad(set_to_none=True)
                accelerator.backward(d_loss)
                opt_d.step()

            step += 1
            seen += len(x) * accelerator.num_processes
            progress.update()
            log_due = step % tc.log_every == 0 or step == tc.steps
            sample_due = accelerator.is_main_process and (step % tc.sample_every == 0 or step == tc.steps)
            save_due = step % tc.checkpoint_every == 0 or step == tc.steps
            if (log_due or sample_due or save_due or stop.requested) and not torch.isfinite(loss):  # NaN weights
                raise FloatingPointError(f"autoencoder loss is {loss.item()} at step {step}; last good checkpoint kept")
            if log_due:
                rate = seen / (time.perf_counter() - tick)
                tick, seen = time.perf_counter(), 0
                n_pixels = x[0].numel()
                logs = {
                    "step": step,
                    "rec": nll.item() / n_pixels,
                    "reg": regularizer.item(),
                    "g": g_loss.item(),
                    "d": d_loss.item(),
                    "lr": schedule.get_last_lr()[0],
                    "images_per_s": rate,
                }
                history.append(logs)
                accelerator.log({f"autoencoder/{k}": v for k, v in logs.items() if k != "step"}, step=step)
                progress.set_postfix(rec=f"{logs['rec']:.4f}", img_s=f"{rate:.1f}")
            if sample_due:
                reconstruction_grid(ae.eval(), val_x.to(device), out / "samples" / f"recon-{step:07d}.png")
                ae.train()
                plot_losses(history, out / "samples" / "losses.png", ["rec", "reg", "g", "d"], "autoencoder")
            if save_due or stop.requested:  # Ctrl-C may come while the grid is written
                save(step)
            stop.stop_if_requested(step, tc.steps)
    progress.close()
    accelerator.end_training()

    # the latent scale s = 1/std(z), stored in the model config, then a diffusers folder
    final = out / "vae"
    if accelerator.is_main_process:
        ae.eval()
        scale = measure_scaling_factor(ae, data, tc.scale_samples)
        ae.register_to_config(scaling_factor=scale)
        ae.save_pretrained(final, safe_serialization=True)
        save_config(config, final / "t2i_config.yaml")
        accelerator.print(f"latent scaling factor {scale:.5f}; saved {final}")
    accelerator.wait_for_everyone()
    return final
