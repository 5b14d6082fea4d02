"""Training a prior over image tokens (the transformer's, the PixelCNN's): cross-entropy of each image's codes,
each given the codes before it and the caption.

    t = the image's tokens (t2i cache tokens), y = a caption ("" with probability p, for guidance)
    L = −(1/N) Σ_i log p_θ(t_i | t_<i, τ(y))

The family's pipeline class (t2i.families) builds the prior (`build`), which gives its own `loss`; its config
section `<prior>_training` (TokenPriorTrainConfig) says how long and how fast.

Every random draw of step s (rows, captions, flips, dropped captions) is a pure function of (seed, s), and
nothing else in a step is random, so a resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.optimization import get_scheduler

from t2i.autoencoder.tokens import TokenCache, load_token_autoencoder
from t2i.config import TOKEN_FAMILIES, Config, diffusers_schedule_name, require_family, validate
from t2i.families import FAMILIES, imported
from t2i.grid import make_grid
from t2i.text import load_text_encoder
from t2i.training.batches import BatchPlan, caption_cache, sample_prompts
from t2i.training.loop import Run, TrainingTask, start_run, train

TRAINING_SECTIONS = {"vq-transformer": "transformer_training", "pixelcnn": "pixelcnn_training"}


class PriorTask(TrainingTask):
    """A token prior over cached image tokens, AdamW, warm-up then cosine/constant."""

    name, title = "prior", "token prior (cross-entropy, nats)"

    def __init__(self, config: Config, run: Run, cache_dir: str | Path, autoencoder_dir: str | Path):
        tc, device = getattr(config, TRAINING_SECTIONS[config.family]), run.device
        self.config, self.tc, self.device, self.autoencoder_dir = config, tc, device, autoencoder_dir
        # data: cached tokens (train split) and the cached token states of every caption
        self.tokens = TokenCache(cache_dir, autoencoder_dir)
        self.plan = BatchPlan.of_training(self.tokens, tc, config.caption_augment, tc.cfg_dropout)
        self.sample_prompts = sample_prompts(tc, self.tokens)
        text_encoder = load_text_encoder(config.text).to(device)
        pipeline = imported(FAMILIES[config.family].pipeline)
        autoencoder = load_token_autoencoder(autoencoder_dir).to(device)
        self.model = pipeline.build(config, autoencoder, text_encoder).to(device)
        self.pipe = pipeline(self.model, autoencoder, text_encoder)
        if not self.pipe.reads_caption_ids:  # the text encoder's states of every caption, encoded once
            self.text_cache = caption_cache(cache_dir, text_encoder, self.plan, self.sample_prompts)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.lr_schedule = get_scheduler(
            diffusers_schedule_name(tc.lr_schedule, TRAINING_SECTIONS[config.family]),
            self.optimizer,
            num_warmup_steps=tc.warmup_steps,
            num_training_steps=tc.steps,
        )
        self.parts = {"model": self.model, "optimizer": self.optimizer, "lr_schedule": self.lr_schedule}
        self.images_per_step = tc.batch_size

    def prepare(self, run: Run, step: int) -> None:
        self.model.train()

    def train_step(self, step: int) -> dict:
        rows, captions, flips = self.plan.micro_batch(step)
        if self.pipe.reads_caption_ids:
            text, mask = self.pipe.caption_inputs(captions)
        else:
            text, mask = (t.to(self.device) for t in self.text_cache.with_mask(captions))
        loss = self.model.loss(self.tokens.tokens(rows, flips).to(self.device), text, mask)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tc.grad_clip)
        self.optimizer.step()
        self.lr_schedule.step()
        return {"loss": loss}

    def sample(self, step: int, folder: Path) -> None:
        settings = self.pipe.settings_class(guidance=self.tc.sample_guidance)
        made = self.pipe(self.sample_prompts, seed=self.tc.sample_seed, settings=settings)
        self.model.train()
        make_grid(made, self.sample_prompts, cols=len(made), cell=96).save(folder / f"samples-{step:07d}.png")

    def save_model(self, folder: Path) -> None:
        self.pipe.save_pretrained(folder, self.config, self.autoencoder_dir)


def train_prior(config: Config, cache_dir: str | Path, autoencoder_dir: str | Path, out_dir: str | Path) -> Path:
    """Train (or resume) a token prior (the config's family: vq-transformer or pixelcnn) on a token cache made by
    `autoencoder_dir` (a VQ autoencoder or a dVAE); returns the model folder OUT/model. One process."""
    validate(config)
    if config.family not in TOKEN_FAMILIES:
        require_family(config, "vq-transformer")  # names the command that trains this config's family
    run = start_run(config, getattr(config, TRAINING_SECTIONS[config.family]), out_dir, one_process=True)
    return train(run, PriorTask(config, run, cache_dir, autoencoder_dir))
