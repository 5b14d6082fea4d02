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
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import save_file
from tqdm import tqdm

from t2i.autoencoder.cache import LatentCache
from t2i.autoencoder.model import load_autoencoder
from t2i.checkpoint import StopOnInterrupt, latest_checkpoint, load_parts, resume_state, save_checkpoint
from t2i.config import CaptionAugmentConfig, Config, diffusers_schedule_name, require_family, save_config, validate
from t2i.data.augment import with_rewrites
from t2i.data.datasets import epoch_order
from t2i.devices import fits_on_device, process_state, resolve_precision, to_device, use_fast_gpu_math
from t2i.diffusion.text_cache import TextEmbeddingCache
from t2i.diffusion.unet import build_unet, denoise, sentence_token_count, takes_pooled_text
from t2i.grid import make_grid, to_pil
from t2i.hub import local_folder
from t2i.pipeline import Text2ImagePipeline, save_model_config
from t2i.plots import plot_losses
from t2i.text import load_text_encoder, sentence_embedding, unet_condition

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
    unet, noise_scheduler: DDPMScheduler, z0, context, generator, min_snr_gamma: float | None, autocast=nullcontext
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


def optimizer_step(accelerator, unet, optimizer, lr_schedule, micro_batches, noise_scheduler, tc, trained):
    """One optimizer step over `micro_batches` ((z0, context, generator) each): the mean weighted loss, the
    per-sample losses and their timesteps, as tensors on the device (nothing here waits for the GPU)."""
    losses, per_samples, timesteps = [], [], []
    for z0, context, generator in micro_batches:
        with accelerator.accumulate(unet):
            loss, per_sample, t = diffusion_loss(
                unet, noise_scheduler, z0, context, generator, tc.min_snr_gamma, accelerator.autocast
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


def micro_batch_inputs(plan, cache, index: int, generator, scale: float, encode, device):
    """z0 = s·E(x) (for KL a fresh z ~ q(z|x) from `generator`) and the UNet's text inputs = encode(captions) of
    micro-batch `index`, on `device`."""
    rows, captions, flips = plan.micro_batch(index)
    return to_device(cache.latents(rows, flips, generator), device) * scale, encode(captions, generator)


def text_inputs(
    captions: list[str],
    text_encoder,
    text_cache,
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


class BatchPlan:
    """Which cache rows, captions, flips and dropped captions make up a micro-batch: a pure function of it."""

    def __init__(
        self,
        cache: LatentCache,
        rows: list[int],
        seed: int,
        batch_size: int,
        cfg_dropout: float,
        captions_per_image: int | None = None,
        augment: CaptionAugmentConfig | None = None,
    ):
        self.cache, self.rows, self.seed = cache, np.asarray(rows), seed
        self.batch_size, self.cfg_dropout = batch_size, cfg_dropout
        augment = augment or CaptionAugmentConfig(rewrites=0)
        self.row_captions = {  # rewritten once here, not in every micro-batch
            row: with_rewrites(cache.records[row]["captions"][:captions_per_image], augment, seed) for row in rows
        }

    def captions(self, row: int) -> list[str]:
        """The captions that training draws from for one image: its first `captions_per_image`, each followed by
        its rewrites (t2i.data.augment)."""
        return self.row_captions[row]

    def micro_batch(self, index: int):
        """Micro-batch `index` (counted over all processes): row ids, captions (some ""), flips."""
        rows, captions, flips = [], [], []
        for position in range(index * self.batch_size, (index + 1) * self.batch_size):
            epoch, offset = divmod(position, len(self.rows))
            row = int(self.rows[epoch_order(self.seed, epoch, len(self.rows))[offset]])
            rng = np.random.default_rng([self.seed, position, 2])
            record_captions = self.captions(row)
            caption = record_captions[rng.integers(len(record_captions))]
            rows.append(row)
            flips.append(bool(rng.random() < 0.5))
            captions.append("" if rng.random() < self.cfg_dropout else caption)
        return torch.tensor(rows), captions, torch.tensor(flips)


def held_out_captions(cache: LatentCache, n: int) -> list[str]:
    """The first caption of n images the model does not train on (val, then test, then train split): the
    sample grid's default prompts, in the dataset's own words."""
    order = {"val": 0, "test": 1, "train": 2}
    records = sorted(cache.records, key=lambda r: (order[r["split"]], r["id"]))
    return [r["captions"][0] for r in records[:n]]


def train_diffusion(
    config: Config, cache_dir: str | Path, autoencoder_dir: str | Path, out_dir: str | Path, overfit_batch: bool = False
) -> Path:
    """Train (or resume) the text-conditioned UNet on a latent cache; returns the model folder OUT/model."""
    validate(config)
    require_family(config, "latent-diffusion")
    autoencoder_dir = local_folder(autoencoder_dir)
    cache = LatentCache(cache_dir, autoencoder_dir, config.data.image_size)
    return train_denoiser(config, cache, out_dir, cache_dir, autoencoder_dir, overfit_batch)


def train_denoiser(
    config: Config,
    cache,
    out_dir: str | Path,
    text_cache_dir: str | Path,
    autoencoder_dir: str | Path | None = None,
    overfit_batch: bool = False,
) -> Path:
    """The loop of both diffusion families (`config` validated). `cache` gives z0 for rows of its `records`:
    autoencoder latents (a LatentCache; `autoencoder_dir` is its autoencoder) or, without one, the images."""
    tc = config.diffusion_training
    out = Path(out_dir)
    for sub in ("checkpoints", "samples", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(
        mixed_precision=resolve_precision(tc.mixed_precision, process_state().device),
        gradient_accumulation_steps=tc.grad_accum,
        log_with="tensorboard",
        project_dir=out / "logs",
    )
    device = accelerator.device
    if device.type == "cuda":
        use_fast_gpu_math()
    torch.manual_seed(tc.seed)
    save_config(config, out / "config.yaml")

    # data: cached latents or pixels (train split) and, for a frozen encoder, cached caption embeddings
    vae = load_autoencoder(autoencoder_dir).to(device) if autoencoder_dir else None
    scale = vae.config.scaling_factor if vae else 1.0
    train_rows = [i for i, r in enumerate(cache.records) if r["split"] == "train"]
    if overfit_batch:
        train_rows = train_rows[: tc.batch_size]
    augment, dropout = config.caption_augment, tc.cfg_dropout
    if overfit_batch:  # the same batch, captions and all, every step
        augment, dropout = dataclasses.replace(augment, rewrites=0, token_dropout=0.0), 0.0
    plan = BatchPlan(cache, train_rows, tc.seed, tc.batch_size, dropout, tc.captions_per_image, augment)
    sample_prompts = list(tc.sample_prompts) or held_out_captions(cache, 8)
    text_encoder = load_text_encoder(config.text)
    text_encoder.to(device)
    jointly_trained = config.text.kind == "scratch"
    if not jointly_trained:
        captions = sorted({c for i in train_rows for c in plan.captions(i)} | set(sample_prompts))
        text_cache = TextEmbeddingCache(
            Path(text_cache_dir), text_encoder, captions, precision=accelerator.mixed_precision
        )
        if fits_on_device(text_cache.nbytes, device):
            text_cache.to(device)
    if fits_on_device(cache.nbytes, device):  # a batch is then gathered on the GPU
        cache.to(device)

    # model, EMA, optimizer (AdamW), LR warm-up then cosine/constant
    factor, channels = (2 ** (len(vae.config.block_out_channels) - 1), vae.config.latent_channels) if vae else (1, 3)
    unet = build_unet(config.unet, channels, config.data.image_size // factor, text_encoder.hidden_size)
    if tc.channels_last:
        unet.to(memory_format=torch.channels_last)
    trained = list(unet.parameters()) + (list(text_encoder.parameters()) if jointly_trained else [])
    ema = EMAModel(
        unet.parameters(), decay=tc.ema_decay, foreach=True, model_cls=UNet2DConditionModel, model_config=unet.config
    )
    optimizer = make_optimizer(trained, tc.lr, tc.weight_decay, device)
    lr_schedule = get_scheduler(
        diffusers_schedule_name(tc.lr_schedule, "diffusion_training"),
        optimizer,
        num_warmup_steps=tc.warmup_steps,
        num_training_steps=tc.steps,
    )
    noise_scheduler = make_noise_scheduler(config)

    # resume: UNet, EMA, optimizer, LR schedule, text encoder (if trained), loss history, step
    step, history = 0, []
    resumed = resume_state(out / "checkpoints")
    if resumed:
        checkpoint, state = resumed
        for option, prefix in (("pooled_text", "class_embedding."), ("sentence_tokens", "encoder_hid_proj.")):
            in_checkpoint, in_config = any(k.startswith(prefix) for k in state["unet"]), getattr(config.unet, option)
            if in_checkpoint != in_config:
                raise ValueError(
                    f"{checkpoint} was trained with unet.{option}: {str(in_checkpoint).lower()} and the config says "
                    f"{str(in_config).lower()} (runs started before the option default to false): set it as the run "
                    "had it to resume"
                )
        parts = {"unet": unet, "ema": ema, "optimizer": optimizer, "lr_schedule": lr_schedule}
        load_parts(checkpoint, state, parts | ({"text_encoder": text_encoder} if jointly_trained else {}))
        step, history = state["step"], state["history"]
        accelerator.print(f"resumed from {checkpoint} at step {step}")
    ema.to(device)
    world, rank = accelerator.num_processes, accelerator.process_index
    if jointly_trained and world > 1:
        raise ValueError("text.kind 'scratch' trains on one process only; use a frozen encoder for multi-GPU runs")
    if tc.compile:
        unet.compile()  # in place: the state dict keeps its keys
    unet, optimizer, lr_schedule = accelerator.prepare(unet, optimizer, lr_schedule)
    raw_unet, raw_text = accelerator.unwrap_model(unet), text_encoder
    accelerator.init_trackers("diffusion")

    def save(step: int) -> None:
        if accelerator.is_main_process:
            state = {
                "step": step,
                "history": history,
                "unet": raw_unet.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "lr_schedule": lr_schedule.state_dict(),
                "world_size": world,
                "global_batch": tc.batch_size * tc.grad_accum * world,
            }
            if jointly_trained:
                state["text_encoder"] = raw_text.state_dict()
            save_checkpoint(out / "checkpoints", step, state, tc.keep_checkpoints)

    @torch.no_grad()
    def sample_grid(step: int) -> None:
        prompts, originals = sample_prompts, []
        if overfit_batch:  # the training images, above what the model makes of their captions
            rows, captions, flips = plan.micro_batch(0)
            prompts = captions[:8]
            z = cache.latents(rows[:8], flips[:8], torch.Generator()).to(device)
            originals = to_pil(vae.decode(z).sample if vae else z)
        ema.store(raw_unet.parameters())
        ema.copy_to(raw_unet.parameters())  # sample with the EMA weights
        pipe = Text2ImagePipeline(raw_unet, vae, raw_text, noise_scheduler.config)
        images = pipe(
            prompts, guidance_scale=tc.sample_guidance, num_inference_steps=tc.sample_steps, seed=tc.sample_seed
        )
        ema.restore(raw_unet.parameters())
        raw_unet.train()
        labels = [""] * len(originals) + prompts
        make_grid(originals + images, labels, cols=len(prompts), cell=96).save(
            out / "samples" / f"samples-{step:07d}.png"
        )

    pooled, tokens = takes_pooled_text(raw_unet), sentence_token_count(raw_unet) > 0
    cached = None if jointly_trained else text_cache

    def encode(captions: list[str], generator: torch.Generator) -> dict[str, torch.Tensor]:
        return text_inputs(
            captions, text_encoder, cached, pooled, device, augment.token_dropout, generator, augment.sentence_only,
            tokens,
        )  # fmt: skip

    def micro_batches(step: int):
        """The (z0, context, generator) of each micro-batch of a step: a pure function of (seed, step, process)."""
        for micro in range(tc.grad_accum):
            index = 0 if overfit_batch else (step * tc.grad_accum + micro) * world + rank
            gen = torch.Generator().manual_seed(tc.seed * 1_000_003 + (step * tc.grad_accum + micro) * world + rank)
            yield *micro_batch_inputs(plan, cache, index, gen, scale, encode, device), gen

    def ensure_finite(step: int, checked: int) -> int:
        """Stop on a NaN/inf loss in the steps since the last check (the loop's one wait for the GPU besides
        the logged values), before anything is sampled or saved; returns the step checked."""
        if not torch.isfinite(loss_sum):
            raise FloatingPointError(
                f"diffusion loss is {loss_sum.item()} in steps {checked + 1}-{step}; stopping. The last good "
                f"checkpoint ({latest_checkpoint(out / 'checkpoints')}) is untouched: lower the LR or check the data"
            )
        return step

    progress = tqdm(total=tc.steps, initial=step, desc="diffusion", disable=not accelerator.is_main_process)
    tick, seen, checked = time.perf_counter(), 0, step
    # the logged loss is the mean over the steps since the last log; kept on the device until then
    loss_sum, loss_steps = torch.zeros((), device=device), 0
    bucket_sum, bucket_count = (
        torch.zeros(TIMESTEP_BUCKETS, device=device),
        torch.zeros(TIMESTEP_BUCKETS, device=device),
    )
    with StopOnInterrupt(enabled=world == 1) as stop:  # Ctrl-C: checkpoint, then stop
        while step < tc.steps:
            loss, per_sample, t = optimizer_step(
                accelerator, unet, optimizer, lr_schedule, micro_batches(step), noise_scheduler, tc, trained
            )
            ema.step(raw_unet.parameters())
            buckets = t * TIMESTEP_BUCKETS // noise_scheduler.config.num_train_timesteps
            loss_sum += loss
            bucket_sum.index_add_(0, buckets, per_sample)
            bucket_count.index_add_(0, buckets, torch.ones_like(per_sample))
            seen += tc.batch_size * tc.grad_accum * world
            step += 1
            loss_steps += 1
            progress.update()
            log_due = step % tc.log_every == 0 or step == tc.steps
            sample_due = accelerator.is_main_process and (step % tc.sample_every == 0 or step == tc.steps)
            if log_due or sample_due:
                checked = ensure_finite(step, checked)
            if log_due:
                rate = seen / (time.perf_counter() - tick)
                logs = {
                    "step": step,
                    "loss": loss_sum.item() / loss_steps,
                    "lr": lr_schedule.get_last_lr()[0],
                    "images_per_s": rate,
                }
                sums, counts = bucket_sum.tolist(), bucket_count.tolist()
                logs |= {f"loss_t{b}": sums[b] / counts[b] for b in range(TIMESTEP_BUCKETS) if counts[b] > 0}
                tick, seen, loss_steps = time.perf_counter(), 0, 0
                for total in (loss_sum, bucket_sum, bucket_count):
                    total.zero_()
                history.append(logs)
                accelerator.log({f"diffusion/{k}": v for k, v in logs.items() if k != "step"}, step=step)
                progress.set_postfix(loss=f"{logs['loss']:.4f}", img_s=f"{rate:.1f}")
            if sample_due:
                sample_grid(step)
                plot_losses(
                    history,
                    out / "samples" / "losses.png",
                    ["loss"] + [f"loss_t{b}" for b in range(TIMESTEP_BUCKETS)],
                    "diffusion (loss_tK: timesteps in bucket K of 5, K=0 least noise)",
                )
            if step % tc.checkpoint_every == 0 or step == tc.steps or stop.requested:  # Ctrl-C may come while sampling
                checked = ensure_finite(step, checked)
                save(step)
            stop.stop_if_requested(step, tc.steps)
    progress.close()
    accelerator.end_training()

    # the model folder: EMA UNet, the autoencoder (latent diffusion), the noise schedule, the text encoder, our config
    model_dir = out / "model"
    if accelerator.is_main_process:
        ema.copy_to(raw_unet.parameters())
        raw_unet.save_pretrained(model_dir / "unet", safe_serialization=True)
        if autoencoder_dir:
            shutil.copytree(autoencoder_dir, model_dir / "vae", dirs_exist_ok=True)
        noise_scheduler.save_pretrained(model_dir / "scheduler")
        save_model_config(model_dir, config)
        if jointly_trained:
            save_file(raw_text.state_dict(), model_dir / "text_encoder" / "model.safetensors")
    accelerator.wait_for_everyone()
    return model_dir
