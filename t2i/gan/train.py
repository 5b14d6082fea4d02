"""GAN-CLS training (Reed et al., 2016) with the GAN-INT term, on the same images and captions as the others.

    h = sentence embedding of the caption, ĥ = that of another image's caption, x̂ = G(z, h)
    L_D = BCE(D(x, h), 1) + ½ [BCE(D(x, ĥ), 0) + BCE(D(x̂, h), 0)]    real/right, real/wrong, fake/right
    L_G = BCE(D(x̂, h), 1) + λ BCE(D(G(z', h_int), h_int), 1)          h_int = ½ (h + ĥ)  (GAN-INT, β = ½)

Every random draw of step s (rows, captions, flips, z) is a pure function of (seed, s), so a resumed run
continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from t2i.checkpoint import StopOnInterrupt, latest_checkpoint, resume_parts, save_checkpoint
from t2i.config import Config, require_family, save_config, validate
from t2i.devices import process_state
from t2i.diffusion.text_cache import TextEmbeddingCache
from t2i.diffusion.train import BatchPlan, held_out_captions
from t2i.gan.model import Discriminator, Generator, init_weights
from t2i.gan.pipeline import GANPipeline
from t2i.grid import make_grid
from t2i.pipeline import save_model_config
from t2i.pixel_diffusion.train import PixelImages
from t2i.plots import plot_losses
from t2i.text import load_text_encoder, sentence_embedding


def discriminator_loss(discriminator, x, h, h_wrong, fake) -> torch.Tensor:
    """L_D: real images with their captions are real; with another image's caption, or generated, are fake."""
    real, wrong, generated = discriminator(x, h), discriminator(x, h_wrong), discriminator(fake.detach(), h)
    return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + 0.5 * (
        F.binary_cross_entropy_with_logits(wrong, torch.zeros_like(wrong))
        + F.binary_cross_entropy_with_logits(generated, torch.zeros_like(generated))
    )


def generator_loss(generator, discriminator, h, h_wrong, fake, z_interpolated, interpolation_weight: float):
    """L_G: fool D with the caption's image, and (GAN-INT) with an image of a caption between two real ones."""
    judged = discriminator(fake, h)
    loss = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
    if interpolation_weight > 0:
        h_int = 0.5 * (h + h_wrong)
        judged = discriminator(generator(z_interpolated, h_int), h_int)
        loss = loss + interpolation_weight * F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
    return loss


def train_gan(config: Config, data_dir: str | Path, out_dir: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Train (or resume) GAN-CLS; returns the model folder OUT/model. Caption embeddings are cached in
    `cache_dir` (None: OUT/cache). One process: BatchNorm statistics and the two alternating updates stay simple."""
    validate(config)
    require_family(config, "gan")
    tc = config.gan_training
    out = Path(out_dir)
    for sub in ("checkpoints", "samples"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    device = process_state().device
    torch.manual_seed(tc.seed)
    save_config(config, out / "config.yaml")

    # data: the images in memory, sentence embeddings from the cached token states of each caption
    images = PixelImages(data_dir, config.data.image_size, config.data.split_fractions, config.data.flip)
    train_rows = [i for i, r in enumerate(images.records) if r["split"] == "train"]
    plan = BatchPlan(images, train_rows, tc.seed, tc.batch_size, 0.0, tc.captions_per_image, config.caption_augment)
    sample_prompts = list(tc.sample_prompts) or held_out_captions(images, 8)
    text_encoder = load_text_encoder(config.text).to(device)
    captions = sorted({c for i in train_rows for c in plan.captions(i)} | set(sample_prompts))
    text_cache = TextEmbeddingCache(cache_dir or out / "cache", text_encoder, captions)

    # the two networks and their Adam optimizers (DCGAN: lr 2e-4, β1 0.5)
    generator = Generator(config.gan, config.data.image_size, text_encoder.hidden_size).to(device)
    discriminator = Discriminator(config.gan, config.data.image_size, text_encoder.hidden_size).to(device)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    opt_g = torch.optim.Adam(generator.parameters(), lr=tc.lr, betas=(tc.beta1, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=tc.lr, betas=(tc.beta1, 0.999))

    parts = {"generator": generator, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d}
    step, history = resume_parts(out / "checkpoints", parts)

    def check_finite(loss: torch.Tensor, network: str, step: int) -> None:
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"{network} loss is {loss.item()} at step {step}; stopping. The last good checkpoint "
                f"({latest_checkpoint(out / 'checkpoints')}) is untouched: lower the LR or check the data"
            )

    def save(step: int) -> None:
        state = {"step": step, "history": history} | {k: v.state_dict() for k, v in parts.items()}
        save_checkpoint(out / "checkpoints", step, state, tc.keep_checkpoints)

    def sample_grid(step: int) -> None:
        pipe = GANPipeline(generator, text_encoder)
        made = pipe(sample_prompts, seed=tc.sample_seed)
        generator.train()
        make_grid(made, sample_prompts, cols=len(sample_prompts), cell=96).save(
            out / "samples" / f"samples-{step:07d}.png"
        )

    progress = tqdm(total=tc.steps, initial=step, desc="gan")
    tick, seen, sums, count = time.perf_counter(), 0, {"loss_d": 0.0, "loss_g": 0.0}, 0
    with StopOnInterrupt() as stop:
        while step < tc.steps:
            rows, captions, flips = plan.micro_batch(step)
            gen = torch.Generator().manual_seed(tc.seed * 1_000_003 + step)
            x = images.latents(rows, flips).to(device)
            h = sentence_embedding(*text_cache.with_mask(captions)).to(device)
            h_wrong = h.roll(1, 0)  # the caption of another image in the batch
            z = torch.randn(len(x), config.gan.noise_dim, generator=gen).to(device)
            z_int = torch.randn(len(x), config.gan.noise_dim, generator=gen).to(device)
            fake = generator(z, h)
            loss_d = discriminator_loss(discriminator, x, h, h_wrong, fake)
            check_finite(loss_d, "discriminator", step)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = generator_loss(generator, discriminator, h, h_wrong, fake, z_int, tc.interpolation_weight)
            check_finite(loss_g, "generator", step)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=list(generator.parameters()))  # D's gradients are not needed here
            opt_g.step()
            step, seen, count = step + 1, seen + len(x), count + 1
            sums["loss_d"] += loss_d.item()
            sums["loss_g"] += loss_g.item()
            progress.update()
            if step % tc.log_every == 0 or step == tc.steps:
                rate = seen / (time.perf_counter() - tick)
                history.append({"step": step, "images_per_s": rate} | {k: v / count for k, v in sums.items()})
                progress.set_postfix(loss_d=f"{history[-1]['loss_d']:.3f}", loss_g=f"{history[-1]['loss_g']:.3f}",
                                     img_s=f"{rate:.0f}")  # fmt: skip
                tick, seen, sums, count = time.perf_counter(), 0, dict.fromkeys(sums, 0.0), 0
            if step % tc.sample_every == 0 or step == tc.steps:
                sample_grid(step)
                plot_losses(
                    history, out / "samples" / "losses.png", ["loss_d", "loss_g"], "GAN-CLS (D: matching-aware)"
                )
            if step % tc.checkpoint_every == 0 or step == tc.steps or stop.requested:
                save(step)
            stop.stop_if_requested(step, tc.steps)
    progress.close()

    # the model folder: the generator, the text encoder's reference, our config
    model_dir = out / "model"
    save_model_config(model_dir, config)
    save_file(generator.state_dict(), model_dir / "generator.safetensors")
    return model_dir
