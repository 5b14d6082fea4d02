"""Stage 2 training: a UNet learns εθ(z_t, t, τθ(y)) on cached latents and cached text embeddings.

    z0 = s·E(x)                      from the latent cache (a fresh z ~ q(z|x) each time for KL)
    z_t = √ᾱ_t z0 + √(1−ᾱ_t) ε       DDPMScheduler.add_noise, scaled-linear β, T = 1000
    L = w(t) ‖ε − εθ(z_t, t, τθ(y))‖²  min-SNR-γ weight w(t); y replaced by "" with probability p (CFG)

Every random draw of step s (rows, captions, flips, caption dropout, latent sample, ε, t) is a pure
function of (seed, s, process), so a resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import dataclasses
import shutil
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import save_file

from t2i.autoencoder.cache import LatentCache
from t2i.autoencoder.model import load_autoencoder
from t2i.config import Config, diffusers_schedule_name, require_family, validate
from t2i.devices import fits_on_device, to_device
from t2i.diffusion.unet import build_unet, denoise, sentence_token_count, takes_pooled_text
from t2i.grid import make_grid, to_pil
from t2i.hub import local_folder
from t2i.pipeline import Text2ImagePipeline, save_model_config
from t2i.text import load_text_encoder, sentence_embedding, unet_condition
from t2i.training.batches import BatchPlan, caption_cache, sample_prompts, step_generator, train_rows
from t2i.training.loop import Run, TrainingTask, start_run, train

TIMESTEP_BUCKETS = 5


def make_noise_scheduler(config: Config) -> DDPMScheduler:
    d = config.diffusion
    return DDPMScheduler(
        num_train_timesteps=d.num_train_timesteps,
        beta_start=d.beta_start,
        beta_end=d.beta_end,
        beta_schedule=d.beta_schedule,
        prediction_type=d.prediction_type,
        clip_sample=d.clip_sample,
        steps_offset=1,  # Stable Diffusion's: diffusers' StableDiffusionPipeline rewrites any other value to 1
    )


def min_snr_weight(snr: torch.Tensor, gamma: float | None, prediction_type: str) -> torch.Tensor:
    """w(t) = min(SNR_t, γ) / SNR_t for ε-prediction, min(SNR_t, γ) / (SNR_t + 1) for v (Hang et al. 2023)."""
    if gamma is None:
        return torch.ones_like(snr)
    clipped = snr.clamp(max=gamma)
    return clipped / (snr + 1) if prediction_type == "v_prediction" else clipped / snr


def diffusion_loss(
    unet, noise_scheduler: DDPMScheduler, z0, context, *, generator, min_snr_gamma: float | None, autocast=nullcontext
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch's weighted loss, per-sample losses and timesteps; noise and t drawn from `generator`. `context`:
    the UNet's text inputs (t2i.text.unet_condition)."""
    noise = to_device(torch.randn(z0.shape, generator=generator), z0.device)
    t = to_device(
        torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(z0),), generator=generator), z0.device
    )
    z_t = noise_scheduler.add_noise(z0, noise, t)  # z_t = √ᾱ_t z0 + √(1−ᾱ_t) ε
    if noise_scheduler.config.prediction_type == "epsilon":
        target = noise
    else:
        target = noise_scheduler.get_velocity(z0, noise, t)  # v = √ᾱ_t ε − √(1−ᾱ_t) z0
    with autocast():
        prediction = denoise(unet, z_t, t, context)
    per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").mean((1, 2, 3))
    alphas_cumprod = noise_scheduler.alphas_cumprod.to(t.device)[t]  # on the device since add_noise: no copy
    snr = alphas_cumprod / (1 - alphas_cumprod)  # SNR_t = ᾱ_t / (1 − ᾱ_t)
    weight = min_snr_weight(snr, min_snr_gamma, noise_scheduler.config.prediction_type)
    return (weight * per_sample).mean(), per_sample, t  # L = w(t) ‖ε − εθ(z_t, t, τθ(y))‖²


def make_optimizer(parameters, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW; on a GPU its fused kernel (one launch for all parameters)."""
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda" or None)


def optimizer_step(accelerator, unet, micro_batches, *, optimizer, lr_schedule, noise_scheduler, tc, trained):
    """One optimizer step over `micro_batches` ((z0, context, generator) each): the mean weighted loss, the
    per-sample losses and their timesteps, as tensors on the device (nothing here waits for the GPU)."""
    losses, per_samples, timesteps = [], [], []
    for z0, context, generator in micro_batches:
        with accelerator.accumulate(unet):
            loss, per_sample, t = diffusion_loss(
                unet,
                noise_scheduler,
                z0,
                context,
                generator=generator,
                min_snr_gamma=tc.min_snr_gamma,
                autocast=accelerator.autocast,
            )
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(trained, tc.grad_clip)
            optimizer.step()
            lr_schedule.step()
            optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
        per_samples.append(per_sample.detach())
        timesteps.append(t)
    return torch.stack(losses).mean(), torch.cat(per_samples), torch.cat(timesteps)


def micro_batch_inputs(plan, cache, index: int, *, generator, scale: float, encode, device):
    """z0 = s·E(x) (for KL a fresh z ~ q(z|x) from `generator`) and the UNet's text inputs = encode(captions) of
    micro-batch `index`, on `device`."""
    rows, captions, flips = plan.micro_batch(index)
    return to_device(cache.latents(rows, flips, generator), device) * scale, encode(captions, generator)


def text_inputs(
    captions: list[str],
    text_encoder,
    text_cache,
    *,
    pooled: bool,
    device,
    token_dropout: float = 0.0,
    generator=None,
    sentence_only: float = 0.0,
    sentence_tokens: bool = False,
) -> dict[str, torch.Tensor]:
    """The UNet's text inputs (t2i.text.unet_condition) of `captions` on `device`: from the caption cache, or
    (`text_cache` None) from the jointly trained text encoder; with `token_dropout` p, each real token is left out
    of cross-attention (its state zeroed) with probability p, while the sentence embedding stays the whole
    caption's, so that the UNet has a reason to read it; with `sentence_only` q (and `pooled` or
    `sentence_tokens`), each caption's token states are the empty caption's with probability q, its sentence
    embedding kept. Both drawn from `generator`."""
    encode = text_encoder.encode if text_cache is None else text_cache.with_mask
    states, mask = encode(captions)
    sentence = to_device(sentence_embedding(states, mask), device) if pooled or sentence_tokens else None
    if token_dropout > 0:
        kept = to_device(torch.rand(mask.shape, generator=generator) >= token_dropout, mask.device)
        kept = kept | (mask.sum(1, keepdim=True) <= 2)  # "" ([CLS] [SEP]) stays the unconditional input
        states = states * kept.unsqueeze(-1).to(states.dtype)
    condition = unet_condition(to_device(states, device), to_device(mask, device), pooled, sentence_tokens, sentence)
    if sentence is not None and sentence_only > 0:  # cross-attention sees "", s(y) still reaches the UNet
        alone = to_device(torch.rand(len(captions), generator=generator) < sentence_only, device)
        empty = to_device(encode([""])[0], device).to(states.dtype)
        condition["encoder_hidden_states"] = torch.where(
            alone[:, None, None], empty, condition["encoder_hidden_states"]
        )
    return condition


def train_diffusion(
    config: Config, cache_dir: str | Path, autoencoder_dir: str | Path, out_dir: str | Path, overfit_batch: bool = False
) -> Path:
    """Train (or resume) the text-conditioned UNet on a latent cache; returns the model folder OUT/model."""
    validate(config)
    require_family(config, "latent-diffusion")
    autoencoder_dir = local_folder(autoencoder_dir)
    cache = LatentCache(cache_dir, autoencoder_dir, config.data.image_size)
    return train_denoiser(config, cache, out_dir, cache_dir, autoencoder_dir, overfit_batch)


class DenoiserTask(TrainingTask):
    """The UNet, its EMA, AdamW and the LR schedule over a latent cache (or the images, with no autoencoder)."""

    name, curves = "diffusion", ("loss", *(f"loss_t{b}" for b in range(TIMESTEP_BUCKETS)))
    title = "diffusion (loss_tK: timesteps in bucket K of 5, K=0 least noise)"

    def __init__(self, config: Config, run: Run, cache, text_cache_dir, autoencoder_dir=None, overfit_batch=False):
        self.config, self.tc, self.run, self.cache, self.overfit_batch = (
            config,
            config.diffusion_training,
            run,
            cache,
            overfit_batch,
        )
        self.autoencoder_dir = autoencoder_dir
        self._data(Path(text_cache_dir))
        self._model()

    def _data(self, text_cache_dir: Path) -> None:
        """z0 from the cache (latents or pixels, train split) and, for a frozen encoder, the caption embeddings."""
        tc, config, device = self.tc, self.config, self.run.device
        self.vae = load_autoencoder(self.autoencoder_dir).to(device) if self.autoencoder_dir else None
        self.scale = self.vae.config.scaling_factor if self.vae else 1.0
        rows = train_rows(self.cache)[: tc.batch_size if self.overfit_batch else None]
        self.augment, dropout = config.caption_augment, tc.cfg_dropout
        if self.overfit_batch:  # the same batch, captions and all, every step
            self.augment, dropout = dataclasses.replace(self.augment, rewrites=0, token_dropout=0.0), 0.0
        self.plan = BatchPlan(
            self.cache,
            rows,
            seed=tc.seed,
            batch_size=tc.batch_size,
            cfg_dropout=dropout,
            captions_per_image=tc.captions_per_image,
            augment=self.augment,
        )
        self.sample_prompts = sample_prompts(tc, self.cache)
        self.text_encoder = load_text_encoder(config.text).to(device)
        self.jointly_trained = config.text.kind == "scratch"
        self.text_cache = None
        if not self.jointly_trained:
            precision = self.run.accelerator.mixed_precision
            self.text_cache = caption_cache(
                text_cache_dir, self.text_encoder, self.plan, self.sample_prompts, precision
            )
            if fits_on_device(self.text_cache.nbytes, device):
                self.text_cache.to(device)
        if fits_on_device(self.cache.nbytes, device):  # a batch is then gathered on the GPU
            self.cache.to(device)

    def _model(self) -> None:
        """The UNet, its EMA, AdamW, LR warm-up then cosine/constant, the noise schedule."""
        tc, vae, device = self.tc, self.vae, self.run.device
        factor, channels = (
            (2 ** (len(vae.config.block_out_channels) - 1), vae.config.latent_channels) if vae else (1, 3)
        )
        size = self.config.data.image_size // factor
        self.unet = self.build_unet(channels, size)
        if tc.channels_last:
            self.unet.to(memory_format=torch.channels_last)
        self.trained = list(self.unet.parameters()) + (
            list(self.text_encoder.parameters()) if self.jointly_trained else []
        )
        self.ema = EMAModel(
            self.unet.parameters(),
            decay=tc.ema_decay,
            foreach=True,
            model_cls=UNet2DConditionModel,
            model_config=self.unet.config,
        )
        self.optimizer = make_optimizer(self.trained, tc.lr, tc.weight_decay, device)
        self.lr_schedule = get_scheduler(
            diffusers_schedule_name(tc.lr_schedule, "diffusion_training"),
            self.optimizer,
            num_warmup_steps=tc.warmup_steps,
            num_training_steps=tc.steps,
        )
        self.noise_scheduler = make_noise_scheduler(self.config)
        self.parts = {"unet": self.unet, "ema": self.ema, "optimizer": self.optimizer, "lr_schedule": self.lr_schedule}
        if self.jointly_trained:
            self.parts["text_encoder"] = self.text_encoder

    def build_unet(self, channels: int, size: int):
        return build_unet(self.config.unet, channels, size, self.text_encoder.hidden_size)

    def check_resume(self, path: Path, state: dict) -> None:
        for option, prefix in (("pooled_text", "class_embedding.linear_1."), ("sentence_tokens", "encoder_hid_proj.")):
            in_checkpoint = any(k.startswith(prefix) for k in state["unet"])
            in_config = getattr(self.config.unet, option)
            if in_checkpoint != in_config:
                raise ValueError(
                    f"{path} was trained with unet.{option}: {str(in_checkpoint).lower()} and the config says "
                    f"{str(in_config).lower()} (runs started before the option default to false): set it as the run "
                    "had it to resume"
                )

    def prepare(self, run: Run, step: int) -> None:
        accelerator, tc = run.accelerator, self.tc
        self.ema.to(run.device)
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        if self.jointly_trained and self.world > 1:
            raise ValueError("text.kind 'scratch' trains on one process only; use a frozen encoder for multi-GPU runs")
        if tc.compile:
            self.unet.compile()  # in place: the state dict keeps its keys
        self.prepared = accelerator.prepare(self.unet, self.optimizer, self.lr_schedule)[0]
        self.images_per_step = tc.batch_size * tc.grad_accum * self.world
        self.pooled, self.tokens = takes_pooled_text(self.unet), sentence_token_count(self.unet) > 0

    def checkpoint_info(self) -> dict:
        return {"world_size": self.world, "global_batch": self.images_per_step}

    def encode(self, captions: list[str], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The UNet's text inputs of a micro-batch's captions (token dropout and sentence-only drawn)."""
        augment = self.augment
        return text_inputs(
            captions,
            self.text_encoder,
            self.text_cache,
            pooled=self.pooled,
            device=self.run.device,
            token_dropout=augment.token_dropout,
            generator=generator,
            sentence_only=augment.sentence_only,
            sentence_tokens=self.tokens,
        )

    def micro_batches(self, step: int):
        """The (z0, context, generator) of each micro-batch of a step: a pure function of (seed, step, process)."""
        tc = self.tc
        for micro in range(tc.grad_accum):
            index = (step * tc.grad_accum + micro) * self.world + self.rank
            generator = step_generator(tc.seed, index)
            plan_index = 0 if self.overfit_batch else index
            z0, context = micro_batch_inputs(
                self.plan,
                self.cache,
                plan_index,
                generator=generator,
                scale=self.scale,
                encode=self.encode,
                device=self.run.device,
            )
            yield z0, context, generator

    def train_step(self, step: int) -> dict:
        loss, per_sample, t = optimizer_step(
            self.run.accelerator,
            self.prepared,
            self.micro_batches(step),
            optimizer=self.optimizer,
            lr_schedule=self.lr_schedule,
            noise_scheduler=self.noise_scheduler,
            tc=self.tc,
            trained=self.trained,
        )
        self.ema.step(self.unet.parameters())
        buckets = t * TIMESTEP_BUCKETS // self.noise_scheduler.config.num_train_timesteps
        sums = torch.zeros(TIMESTEP_BUCKETS, device=t.device).index_add_(0, buckets, per_sample)
        counts = torch.zeros(TIMESTEP_BUCKETS, device=t.device).index_add_(0, buckets, torch.ones_like(per_sample))
        return {"loss": loss} | {f"loss_t{b}": (sums[b], counts[b]) for b in range(TIMESTEP_BUCKETS)}

    @torch.no_grad()
    def sample(self, step: int, folder: Path) -> None:
        """The sample prompts drawn with the EMA weights (overfitting: the training images above)."""
        prompts, originals, device = self.sample_prompts, [], self.run.device
        if self.overfit_batch:  # the training images, above what the model makes of their captions
            rows, captions, flips = self.plan.micro_batch(0)
            prompts = captions[:8]
            z = self.cache.latents(rows[:8], flips[:8], torch.Generator()).to(device)
            originals = to_pil(self.vae.decode(z).sample if self.vae else z)
        self.ema.store(self.unet.parameters())
        self.ema.copy_to(self.unet.parameters())
        pipe = Text2ImagePipeline(self.unet, self.vae, self.text_encoder, self.noise_scheduler.config)
        tc = self.tc
        images = pipe(
            prompts, guidance_scale=tc.sample_guidance, num_inference_steps=tc.sample_steps, seed=tc.sample_seed
        )
        self.ema.restore(self.unet.parameters())
        self.unet.train()
        grid = make_grid(originals + images, [""] * len(originals) + prompts, cols=len(prompts), cell=96)
        grid.save(folder / f"samples-{step:07d}.png")

    def save_model(self, folder: Path) -> None:
        """The EMA UNet, the autoencoder (latent diffusion), the noise schedule, the text encoder, our config."""
        self.ema.store(self.unet.parameters())
        self.ema.copy_to(self.unet.parameters())
        self.unet.save_pretrained(folder / "unet", safe_serialization=True)
        self.ema.restore(self.unet.parameters())  # training goes on with its own weights (a snapshot)
        if self.autoencoder_dir:
            shutil.copytree(self.autoencoder_dir, folder / "vae", dirs_exist_ok=True)
        self.noise_scheduler.save_pretrained(folder / "scheduler")
        save_model_config(folder, self.config)
        if self.jointly_trained:
            save_file(self.text_encoder.state_dict(), folder / "text_encoder" / "model.safetensors")


def train_denoiser(
    config: Config, cache, out_dir: str | Path, text_cache_dir: str | Path, autoencoder_dir=None, overfit_batch=False
) -> Path:
    """Both diffusion families (`config` validated): `cache` gives z0 for rows of its `records`, autoencoder
    latents (a LatentCache; `autoencoder_dir` is its autoencoder) or, without one, the images."""
    tc = config.diffusion_training
    run = start_run(config, tc, out_dir, precision=tc.mixed_precision, grad_accum=tc.grad_accum)
    return train(run, DenoiserTask(config, run, cache, text_cache_dir, autoencoder_dir, overfit_batch))
