"""GAN-CLS training (Reed et al., 2016) with the GAN-INT term, on the same images and captions as the others.

    h = sentence embedding of the caption, ĥ = that of another image's caption, x̂ = G(z, h)
    L_D = BCE(D(x, h), 1) + ½ [BCE(D(x, ĥ), 0) + BCE(D(x̂, h), 0)]    real/right, real/wrong, fake/right
    L_G = BCE(D(x̂, h), 1) + λ BCE(D(G(z', h_int), h_int), 1)          h_int = ½ (h + ĥ)  (GAN-INT, β = ½)

Every random draw of step s (rows, captions, flips, z) is a pure function of (seed, s), so a resumed run
continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from t2i.config import Config, require_family, validate
from t2i.data.pixels import PixelImages
from t2i.gan.model import Discriminator, Generator, init_weights
from t2i.gan.pipeline import GANPipeline
from t2i.grid import make_grid
from t2i.pipeline import save_model_config
from t2i.text import load_text_encoder, sentence_embedding
from t2i.training.batches import BatchPlan, caption_cache, sample_prompts, step_generator
from t2i.training.loop import Run, TrainingTask, start_run, train


def discriminator_loss(discriminator, x, h, h_wrong, fake, label_smoothing: float = 0.0) -> torch.Tensor:
    """L_D: real images with their captions are real (target 1 − label_smoothing); with another image's caption,
    or generated, are fake."""
    real, wrong, generated = discriminator(x, h), discriminator(x, h_wrong), discriminator(fake.detach(), h)
    return F.binary_cross_entropy_with_logits(real, torch.full_like(real, 1 - label_smoothing)) + 0.5 * (
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


class GANTask(TrainingTask):
    """The generator and the matching-aware discriminator, each with its Adam (DCGAN: lr 2e-4, β1 0.5)."""

    name, curves, shown = "gan", ("loss_d", "loss_g"), ("loss_d", "loss_g")
    title = "GAN-CLS (D: matching-aware)"

    def __init__(self, config: Config, run: Run, data_dir: str | Path, cache_dir: Path):
        tc, device = config.gan_training, run.device
        self.config, self.tc, self.device = config, tc, device
        # data: the images in memory, sentence embeddings from the cached token states of each caption
        self.images = PixelImages(data_dir, config.data.image_size, config.data.split_fractions, config.data.flip)
        self.plan = BatchPlan.of_training(self.images, tc, config.caption_augment)
        self.sample_prompts = sample_prompts(tc, self.images)
        self.text_encoder = load_text_encoder(config.text).to(device)
        self.text_cache = caption_cache(cache_dir, self.text_encoder, self.plan, self.sample_prompts)
        width, size = self.text_encoder.hidden_size, config.data.image_size
        self.generator = Generator(config.gan, size, width).to(device)
        self.discriminator = Discriminator(config.gan, size, width).to(device)
        self.generator.apply(init_weights)
        self.discriminator.apply(init_weights)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=tc.lr, betas=(tc.beta1, 0.999))
        lr_d = tc.discriminator_lr or tc.lr
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr_d, betas=(tc.beta1, 0.999))
        self.parts = {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
        }
        self.images_per_step = tc.batch_size

    def train_step(self, step: int) -> dict:
        """One discriminator update, then one generator update (D's gradients not computed)."""
        rows, captions, flips = self.plan.micro_batch(step)
        gen = step_generator(self.tc.seed, step)
        x = self.images.latents(rows, flips).to(self.device)
        h = sentence_embedding(*self.text_cache.with_mask(captions)).to(self.device)
        h_wrong = h.roll(1, 0)  # the caption of another image in the batch
        z = torch.randn(len(x), self.config.gan.noise_dim, generator=gen).to(self.device)
        z_int = torch.randn(len(x), self.config.gan.noise_dim, generator=gen).to(self.device)
        fake = self.generator(z, h)
        loss_d = discriminator_loss(self.discriminator, x, h, h_wrong, fake, self.tc.label_smoothing)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        weight = self.tc.interpolation_weight
        loss_g = generator_loss(self.generator, self.discriminator, h, h_wrong, fake, z_int, weight)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(self.generator.parameters()))
        self.opt_g.step()
        return {"loss_d": loss_d, "loss_g": loss_g}

    def sample(self, step: int, folder: Path) -> None:
        made = GANPipeline(self.generator, self.text_encoder)(self.sample_prompts, seed=self.tc.sample_seed)
        self.generator.train()
        grid = make_grid(made, self.sample_prompts, cols=len(self.sample_prompts), cell=96)
        grid.save(folder / f"samples-{step:07d}.png")

    def save_model(self, folder: Path) -> None:
        """The generator, the text encoder's reference, our config."""
        save_model_config(folder, self.config)
        save_file(self.generator.state_dict(), folder / "generator.safetensors")


def train_gan(config: Config, data_dir: str | Path, out_dir: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Train (or resume) GAN-CLS; returns the model folder OUT/model. Caption embeddings are cached in
    `cache_dir` (None: OUT/cache). One process: BatchNorm statistics and the two alternating updates stay simple."""
    validate(config)
    require_family(config, "gan")
    run = start_run(config, config.gan_training, out_dir, one_process=True)
    return train(run, GANTask(config, run, data_dir, Path(cache_dir or Path(out_dir) / "cache")))
