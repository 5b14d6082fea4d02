"""Training the token prior: next-token cross-entropy over the VQ codes of each image, given its caption.

    t = the image's tokens (t2i cache tokens), y = a caption ("" with probability p, for guidance)
    L = −(1/N) Σ_i log p_θ(t_i | t_<i, τ(y))

Every random draw of step s (rows, captions, flips, dropped captions) is a pure function of (seed, s), and
nothing else in a step is random, so a resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from diffusers.optimization import get_scheduler
from tqdm import tqdm

from t2i.checkpoint import StopOnInterrupt, latest_checkpoint, resume_parts, save_checkpoint
from t2i.config import Config, diffusers_schedule_name, require_family, save_config, validate
from t2i.devices import process_state
from t2i.diffusion.text_cache import TextEmbeddingCache
from t2i.diffusion.train import BatchPlan, held_out_captions
from t2i.grid import make_grid
from t2i.plots import plot_losses
from t2i.text import load_text_encoder
from t2i.vq_transformer.pipeline import TokenSamplingSettings, VQTransformerPipeline, build_transformer
from t2i.vq_transformer.tokens import TokenCache, load_vq


def train_prior(config: Config, cache_dir: str | Path, autoencoder_dir: str | Path, out_dir: str | Path) -> Path:
    """Train (or resume) the token transformer on a token cache made by `autoencoder_dir` (a VQ autoencoder);
    returns the model folder OUT/model. One process."""
    validate(config)
    require_family(config, "vq-transformer")
    tc = config.transformer_training
    out = Path(out_dir)
    for sub in ("checkpoints", "samples"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    device = process_state().device
    torch.manual_seed(tc.seed)
    save_config(config, out / "config.yaml")

    # data: cached tokens (train split) and the cached token states of every caption
    tokens = TokenCache(cache_dir, autoencoder_dir)
    train_rows = [i for i, r in enumerate(tokens.records) if r["split"] == "train"]
    plan = BatchPlan(
        tokens, train_rows, tc.seed, tc.batch_size, tc.cfg_dropout, tc.captions_per_image, config.caption_augment
    )
    sample_prompts = list(tc.sample_prompts) or held_out_captions(tokens, 8)
    text_encoder = load_text_encoder(config.text).to(device)
    captions = sorted({c for i in train_rows for c in plan.captions(i)} | set(sample_prompts))
    text_cache = TextEmbeddingCache(cache_dir, text_encoder, captions)

    # the model, AdamW, warm-up then cosine/constant
    vq = load_vq(autoencoder_dir).to(device)
    model = build_transformer(config, vq, text_encoder.hidden_size).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    lr_schedule = get_scheduler(
        diffusers_schedule_name(tc.lr_schedule, "transformer_training"),
        optimizer,
        num_warmup_steps=tc.warmup_steps,
        num_training_steps=tc.steps,
    )
    pipe = VQTransformerPipeline(model, vq, text_encoder)

    parts = {"model": model, "optimizer": optimizer, "lr_schedule": lr_schedule}
    step, history = resume_parts(out / "checkpoints", parts)

    def save(step: int) -> None:
        state = {"step": step, "history": history} | {k: v.state_dict() for k, v in parts.items()}
        save_checkpoint(out / "checkpoints", step, state, tc.keep_checkpoints)

    def sample_grid(step: int) -> None:
        made = pipe(sample_prompts, seed=tc.sample_seed, settings=TokenSamplingSettings(guidance=tc.sample_guidance))
        model.train()
        grid = make_grid(made, sample_prompts, cols=len(sample_prompts), cell=96)
        grid.save(out / "samples" / f"samples-{step:07d}.png")

    model.train()
    progress = tqdm(total=tc.steps, initial=step, desc="prior")
    tick, seen, loss_sum, loss_steps = time.perf_counter(), 0, 0.0, 0
    with StopOnInterrupt() as stop:
        while step < tc.steps:
            rows, captions, flips = plan.micro_batch(step)
            states, mask = (t.to(device) for t in text_cache.with_mask(captions))
            loss = model.loss(tokens.tokens(rows, flips).to(device), states, mask)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(
                    f"prior loss is {loss.item()} at step {step}; stopping. The last good checkpoint "
                    f"({latest_checkpoint(out / 'checkpoints')}) is untouched: lower the LR or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            lr_schedule.step()
            step, seen, loss_sum, loss_steps = step + 1, seen + len(rows), loss_sum + loss.item(), loss_steps + 1
            progress.update()
            if step % tc.log_every == 0 or step == tc.steps:
                rate = seen / (time.perf_counter() - tick)
                history.append({"step": step, "loss": loss_sum / loss_steps, "lr": lr_schedule.get_last_lr()[0],
                                "images_per_s": rate})  # fmt: skip
                progress.set_postfix(loss=f"{history[-1]['loss']:.3f}", img_s=f"{rate:.0f}")
                tick, seen, loss_sum, loss_steps = time.perf_counter(), 0, 0.0, 0
            if step % tc.sample_every == 0 or step == tc.steps:
                sample_grid(step)
                plot_losses(history, out / "samples" / "losses.png", ["loss"], "token prior (cross-entropy, nats)")
            if step % tc.checkpoint_every == 0 or step == tc.steps or stop.requested:
                save(step)
            stop.stop_if_requested(step, tc.steps)
    progress.close()
    return pipe.save_pretrained(out / "model", config, autoencoder_dir)
