"""Training throughput on one GPU (issue 16): latent and caption caching, autoencoder training and UNet
training for the demo and celebahq256 presets, with peak memory and model FLOP utilisation (MFU), and the
projected wall time of the celebahq256 recipe on 1 and 8 such GPUs.

    python benchmarks/gpu_train.py [--seconds 420] [--out DIR]   # on a GPU machine: about 6 minutes
    python benchmarks/gpu_train.py --smoke --out DIR             # tiny preset on the CPU: the script runs

It makes its own data (`t2i data synth`) and untrained models (they time the same as trained ones).
- Caching: `cache_latents` (each image and its mirror image) and `TextEmbeddingCache`, as the trainer calls them.
- UNet training: ours (`optimizer_step` on the device-resident latent and caption caches, fused AdamW, foreach
  EMA, as `t2i train diffusion` runs it) against the same UNet trained the way diffusers'
  examples/text_to_image/train_text_to_image.py does (bf16 VAE and text encoder inside every step, the loss
  gathered and `.item()`-ed every step, AdamW and EMA with their defaults; its pixels already decoded on the
  GPU, so its rate is an upper bound), in interleaved rounds; then channels-last and torch.compile on ours.
  A short run of `train_diffusion` itself checks that the trainer reaches its step's rate.
- Autoencoder training: `train_autoencoder` itself, its rate read from its log.
MFU = FLOPs of the model's forward and backward per image (torch.utils.flop_counter) × images/s ÷ the GPU's
dense bf16 peak. Results: OUT/gpu_train.json, written after every part.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import dataclasses
import io
import json
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import UNet2DConditionModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel, compute_snr
from torch.utils.flop_counter import FlopCounterMode

from t2i.autoencoder.cache import LatentCache, cache_latents
from t2i.autoencoder.model import build_autoencoder, load_autoencoder
from t2i.autoencoder.train import train_autoencoder
from t2i.checkpoint import load_checkpoint
from t2i.config import diffusers_schedule_name, load_config
from t2i.data.datasets import ImageCaptionDataset
from t2i.data.synthetic import synthesize_dataset
from t2i.devices import fits_on_device, process_state, resolve_precision, use_fast_gpu_math
from t2i.diffusion.train import (
    make_noise_scheduler,
    make_optimizer,
    micro_batch_inputs,
    optimizer_step,
    text_inputs,
    train_diffusion,
)
from t2i.diffusion.unet import build_unet, takes_pooled_text
from t2i.text import load_text_encoder, tokenize, unet_condition
from t2i.training.batches import BatchPlan, step_generator
from t2i.training.text_cache import TextEmbeddingCache

from common import ROOT, machine

PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.5, "H100": 989.4, "H200": 989.4, "A100": 312.0}  # dense
CELEBAHQ_IMAGES, CELEBAHQ_CAPTIONS, CELEBAHQ_GLOBAL_BATCH = 30_000, 300_000, 256


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def utilisation(flops_per_image: float, images_per_s: float, peak: float | None) -> float | None:
    return flops_per_image * images_per_s / (peak * 1e12) if peak else None


def latent_caching(config, data: Path, ae_dir: Path, n: int, work: Path, device, peak) -> dict:
    """`cache_latents` on n images (and their mirror images), twice into new folders: cold, then warm."""
    seconds = {}
    for run in ("cold", "warm"):
        sync(device)
        start = time.perf_counter()
        cache_dir = cache_latents(ae_dir, data, work / f"cache-{run}", flip=True, split_fractions=(1.0, 0.0, 0.0))
        sync(device)
        seconds[run] = time.perf_counter() - start
    size = config.data.image_size
    with torch.device("meta"):
        encoder = build_autoencoder(config.autoencoder, size)
        encode = flops(lambda: encoder.encode(torch.zeros(1, 3, size, size)))
    rate = n / seconds["warm"]
    return {
        "images": n,
        "seconds": seconds,
        "images_per_s": rate,
        "encoder_gflops_per_image": encode / 1e9,
        "mfu": utilisation(2 * encode, rate, peak),
        "cache_dir": str(cache_dir),
    }


def text_caching(config, cache_dir: Path, work: Path, precision: str, device) -> dict:
    """TextEmbeddingCache of every caption of the cached images, built on the device."""
    text_encoder = load_text_encoder(config.text).to(device)
    captions = sorted({c for r in LatentCache(cache_dir).records for c in r["captions"]})
    sync(device)
    start = time.perf_counter()
    TextEmbeddingCache(work / "text", text_encoder, captions, precision=precision)
    sync(device)
    seconds = time.perf_counter() - start
    return {"captions": len(captions), "seconds": seconds, "captions_per_s": len(captions) / seconds}


class OurStep:
    """One step of `t2i train diffusion` (world size 1): BatchPlan rows gathered from the caches, optimizer_step,
    the foreach EMA, the loss summed on the device."""

    def __init__(self, config, cache: LatentCache, text_cache, unet, accelerator, scale: float):
        tc, device = config.diffusion_training, accelerator.device
        self.tc, self.cache, self.text_cache, self.scale, self.accelerator = tc, cache, text_cache, scale, accelerator
        rows = list(range(len(cache)))
        self.plan = BatchPlan(
            cache,
            rows,
            seed=tc.seed,
            batch_size=tc.batch_size,
            cfg_dropout=tc.cfg_dropout,
            captions_per_image=tc.captions_per_image,
        )
        self.ema = EMAModel(
            unet.parameters(),
            decay=tc.ema_decay,
            foreach=True,
            model_cls=UNet2DConditionModel,
            model_config=unet.config,
        )
        self.ema.to(device)
        self.trained = list(unet.parameters())
        optimizer = make_optimizer(self.trained, tc.lr, tc.weight_decay, device)
        name = diffusers_schedule_name(tc.lr_schedule, "diffusion_training")
        schedule = get_scheduler(name, optimizer, num_warmup_steps=tc.warmup_steps, num_training_steps=tc.steps)
        self.unet, self.optimizer, self.schedule = accelerator.prepare(unet, optimizer, schedule)
        self.raw = accelerator.unwrap_model(self.unet)
        self.noise_scheduler = make_noise_scheduler(config)
        self.step, self.loss_sum = 0, torch.zeros((), device=device)

    def micro_batches(self):
        device = self.accelerator.device
        gen = step_generator(self.tc.seed, self.step)
        pooled = takes_pooled_text(self.raw)

        def encode(captions, _):
            return text_inputs(captions, None, self.text_cache, pooled=pooled, device=device)

        z0, context = micro_batch_inputs(
            self.plan, self.cache, self.step, generator=gen, scale=self.scale, encode=encode, device=device
        )
        yield z0, context, gen

    def __call__(self):
        loss, _, _ = optimizer_step(
            self.accelerator,
            self.unet,
            self.micro_batches(),
            optimizer=self.optimizer,
            lr_schedule=self.schedule,
            noise_scheduler=self.noise_scheduler,
            tc=self.tc,
            trained=self.trained,
        )
        self.ema.step(self.raw.parameters())
        self.loss_sum += loss
        self.step += 1


class DiffusersRecipeStep:
    """One step of diffusers' train_text_to_image.py: the frozen VAE and text encoder (cast to bf16) encode the
    batch inside the step; min-SNR-γ loss; the loss gathered and `.item()`-ed; AdamW and EMA with defaults."""

    def __init__(self, config, unet, vae, text_encoder, pixels, captions, accelerator):
        tc, device = config.diffusion_training, accelerator.device
        dtype = torch.bfloat16 if accelerator.mixed_precision == "bf16" else torch.float32
        self.vae = copy.deepcopy(vae).to(device, dtype).requires_grad_(False)
        self.text_model = copy.deepcopy(text_encoder.model).to(device, dtype).requires_grad_(False)
        tokens = tokenize(text_encoder.tokenizer, captions, config.text.max_tokens)
        self.input_ids, self.mask = tokens["input_ids"].to(device), tokens["attention_mask"].to(device)
        self.pooled = takes_pooled_text(unet)  # the same UNet as ours: its sentence embedding too
        self.pixels, self.dtype, self.gamma = pixels.to(device), dtype, tc.min_snr_gamma
        self.ema = EMAModel(
            unet.parameters(), decay=tc.ema_decay, model_cls=UNet2DConditionModel, model_config=unet.config
        )
        self.ema.to(device)
        optimizer = torch.optim.AdamW(unet.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.unet, self.optimizer, self.schedule = accelerator.prepare(
            unet, optimizer, get_scheduler("constant", optimizer)
        )
        self.noise_scheduler, self.accelerator, self.train_loss = make_noise_scheduler(config), accelerator, 0.0

    def __call__(self):
        with torch.no_grad():
            latents = self.vae.encode(self.pixels.to(self.dtype)).latent_dist.sample() * self.vae.config.scaling_factor
            states = self.text_model(input_ids=self.input_ids).last_hidden_state
        noise = torch.randn_like(latents)
        t = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (len(latents),), device=latents.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        with self.accelerator.accumulate(self.unet):
            prediction = self.unet(noisy, t, **unet_condition(states, self.mask, self.pooled), return_dict=False)[0]
            snr = compute_snr(self.noise_scheduler, t)
            weights = torch.stack([snr, self.gamma * torch.ones_like(t)], dim=1).min(dim=1)[0] / snr
            loss = (F.mse_loss(prediction.float(), noise.float(), reduction="none").mean((1, 2, 3)) * weights).mean()
            self.train_loss += self.accelerator.gather(loss.repeat(len(latents))).mean().item()
            self.accelerator.backward(loss)
            self.accelerator.clip_grad_norm_(self.unet.parameters(), 1.0)
            self.optimizer.step()
            self.schedule.step()
            self.optimizer.zero_grad()
        self.ema.step(self.unet.parameters())


def timed_rounds(contestants: dict, steps: int, rounds: int, device) -> dict[str, list[float]]:
    """Seconds per step of each contestant, in turn A, B, A, B, ... (`steps` steps a round, after 2 warm-up steps)."""
    for step in contestants.values():
        for _ in range(2):
            step()
    times = {name: [] for name in contestants}
    for _ in range(rounds):
        for name, step in contestants.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                step()
            sync(device)
            times[name].append((time.perf_counter() - start) / steps)
    return times


def unet_training(
    config, cache_dir, ae_dir, data, batch, steps, rounds, variants, work, accelerator, peak, profile=None
):
    """Ours against the diffusers recipe, interleaved; then ours in each of `variants` ("channels_last";
    "compile": channels-last and compiled), again interleaved with the peer. `profile`: a file for cProfile's
    table of ours."""
    device, size = accelerator.device, config.data.image_size
    marks, last = {}, [time.perf_counter()]

    def mark(phase: str) -> None:  # seconds of each phase of the setup: where a GPU-idle start goes
        sync(device)
        marks[phase] = round(time.perf_counter() - last[0], 2)
        last[0] = time.perf_counter()

    tc = dataclasses.replace(config.diffusion_training, batch_size=batch)
    config = dataclasses.replace(config, diffusion_training=tc)
    cache, vae = LatentCache(cache_dir), load_autoencoder(ae_dir).to(device)
    text_encoder = load_text_encoder(config.text).to(device)
    captions = sorted({c for r in cache.records for c in r["captions"]})
    text_cache = TextEmbeddingCache(work / "text", text_encoder, captions, precision=accelerator.mixed_precision)
    for part in (cache, text_cache):
        if fits_on_device(part.nbytes, device):
            part.to(device)
    latent, channels, width = size // config.autoencoder.downsample_factor, vae.config.latent_channels, 384
    mark("caches")

    # FLOPs per image: the UNet's forward and backward, and the encoders the peer runs in every step
    with torch.device("meta"):
        model = build_unet(config.unet, channels, latent, width)
        z, states = torch.zeros(1, channels, latent, latent), torch.zeros(1, config.text.max_tokens, width)
        context = unet_condition(states, torch.ones(states.shape[:2]), takes_pooled_text(model))
        unet_flops = flops(lambda: model(z, torch.tensor([500]), **context).sample.sum().backward())
        encoder = build_autoencoder(config.autoencoder, size)
        encoder_flops = flops(lambda: encoder.encode(torch.zeros(1, 3, size, size)))
    with torch.no_grad():
        encoder_flops += flops(lambda: text_encoder.encode(captions[:1]))
    unet = build_unet(config.unet, channels, latent, text_encoder.hidden_size)
    result = {
        "batch": batch,
        "unet_parameters_m": sum(p.numel() for p in unet.parameters()) / 1e6,
        "gflops_per_image": {"unet_forward_backward": unet_flops / 1e9, "vae_and_text_encode": encoder_flops / 1e9},
        "flop_bound_of_caching": (unet_flops + encoder_flops) / unet_flops,
        "caches_on_device": [str(t.device) for t in (next(iter(cache.tensors.values())), text_cache.embeddings)],
    }
    peer_unet, initial = copy.deepcopy(unet), copy.deepcopy(unet)
    mark("flops_and_unets")

    ours = OurStep(config, cache, text_cache, unet.to(device), accelerator, vae.config.scaling_factor)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(3):
        ours()
    sync(device)
    mark("ours_first_3_steps")
    if device.type == "cuda":
        result["peak_memory_gib_ours"] = torch.cuda.max_memory_allocated(device) / 2**30
    held = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    items = [ImageCaptionDataset(data, size, split=None, random_caption=False).item(i, 0) for i in range(batch)]
    pixels, prompts = torch.stack([i["pixel_values"] for i in items]), [i["caption"] for i in items]
    peer = DiffusersRecipeStep(config, peer_unet.to(device), vae, text_encoder, pixels, prompts, accelerator)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        peer()
        sync(device)
        result["peak_memory_gib_peer"] = (torch.cuda.max_memory_allocated(device) - held) / 2**30

    mark("peer_setup_and_first_step")
    times = timed_rounds({"ours": ours, "peer": peer}, steps, rounds, device)
    mark("rounds")
    result["setup_seconds"] = marks
    if profile:  # where ours spends the CPU's time: the top of cProfile's cumulative list over `steps` steps
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(steps):
            ours()
        sync(device)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        profile.write_text(text.getvalue())
    for variant in variants:  # a fresh copy of the initial UNet, so that the optimizer is made for its layout
        start = time.perf_counter()
        try:
            del ours
            unet = copy.deepcopy(initial).to(memory_format=torch.channels_last)
            if variant == "compile":
                unet.compile()
            ours = OurStep(config, cache, text_cache, unet.to(device), accelerator, vae.config.scaling_factor)
            times |= timed_rounds({f"ours_{variant}": ours, f"peer_{variant}": peer}, steps, rounds, device)
        except Exception as error:  # noqa: BLE001 - the base figures stand
            result[f"failed_{variant}"] = f"{type(error).__name__}: {error}"
        result[f"seconds_{variant}_incl_warmup"] = time.perf_counter() - start
    rates = {name: batch / statistics.median(ts) for name, ts in times.items()}
    result["images_per_s"] = rates
    result["speedup_over_peer"] = {  # per interleaved pair of rounds, median
        name: statistics.median(p / o for o, p in zip(ts, times[name.replace("ours", "peer")], strict=True))
        for name, ts in times.items()
        if name.startswith("ours")
    }
    result["mfu"] = {name: utilisation(unet_flops, rate, peak) for name, rate in rates.items()}
    return result


def autoencoder_training(config, data, work, batch, steps, variant: str, gan: bool, peak) -> dict:
    """`train_autoencoder` itself for `steps` steps (GAN off, or on from step 0), logging every 5 steps; the
    median rate of its log windows after the first two (start-up, cuDNN's algorithm search)."""
    tc = dataclasses.replace(
        config.autoencoder_training,
        steps=steps,
        batch_size=batch,
        log_every=5,
        sample_every=steps,
        checkpoint_every=steps,
        keep_checkpoints=1,
        scale_samples=batch,
        disc_start=0 if gan else steps + 1,
        channels_last=variant == "channels_last",
    )
    workers = min(8, os.cpu_count() or 1)
    data_config = dataclasses.replace(config.data, num_workers=workers, split_fractions=(0.9, 0.1, 0.0))
    out = work / f"ae-{variant}-{'gan' if gan else 'nogan'}"
    start = time.perf_counter()
    train_autoencoder(dataclasses.replace(config, data=data_config, autoencoder_training=tc), data, out)
    seconds = time.perf_counter() - start
    history = load_checkpoint(out / "checkpoints" / f"step-{steps:07d}")["history"]
    rate = statistics.median(h["images_per_s"] for h in history[2:] or history[-1:])
    size = config.data.image_size
    with torch.device("meta"):
        model = build_autoencoder(config.autoencoder, size)
        x = torch.zeros(1, 3, size, size)
        step = flops(lambda: model.decode(model.encode(x).latent_dist.sample()).sample.sum().backward())
    return {
        "batch": batch,
        "steps": steps,
        "seconds_incl_setup": seconds,
        "images_per_s": rate,
        "gflops_per_image_without_gan": step / 1e9,
        "mfu": None if gan else utilisation(step, rate, peak),
    }


def trainer_check(config, cache_dir, ae_dir, work, batch, steps) -> dict:
    """`train_diffusion` itself: its own logged images/s (the median of its windows after the first two)."""
    tc = dataclasses.replace(
        config.diffusion_training,
        steps=steps,
        batch_size=batch,
        log_every=max(1, steps // 10),
        sample_every=steps,
        checkpoint_every=steps,
        keep_checkpoints=1,
    )
    train_diffusion(dataclasses.replace(config, diffusion_training=tc), cache_dir, ae_dir, work / "trainer")
    history = load_checkpoint(work / "trainer" / "checkpoints" / f"step-{steps:07d}")["history"]
    return {
        "batch": batch,
        "steps": steps,
        "images_per_s": statistics.median(h["images_per_s"] for h in history[2:] or history[-1:]),
    }


def projection(results: dict) -> dict:
    """Hours of configs/celebahq256.yaml's recipe at the measured rates: 30,000 images and 300,000 captions
    cached; the autoencoder's steps × batch (GAN on from disc_start); the UNet's steps at a global batch of 256
    (the fastest measured variant of ours). 8 GPUs: the 1-GPU hours / 8 (linear scaling, not measured here).
    A part whose rate was not measured is named, not guessed."""
    config = load_config(ROOT / "configs" / "celebahq256.yaml")
    at, dt, r = config.autoencoder_training, config.diffusion_training, results.get("celebahq256", {})

    def rate(part: str, key: str = "images_per_s"):
        return r[part][key] if isinstance(r.get(part), dict) else None

    unet = [
        v for part in ("unet", "unet_variants") if rate(part) for k, v in rate(part).items() if k.startswith("ours")
    ]
    work = {  # part: (amount, rate)
        "latent_cache": (CELEBAHQ_IMAGES, rate("latent_caching")),
        "text_cache": (CELEBAHQ_CAPTIONS, rate("text_caching", "captions_per_s")),
        "autoencoder_without_gan": (min(at.disc_start, at.steps) * at.batch_size, rate("autoencoder")),
        "autoencoder_with_gan": (max(0, at.steps - at.disc_start) * at.batch_size, rate("autoencoder_gan")),
        "unet": (dt.steps * CELEBAHQ_GLOBAL_BATCH, max(unet) if unet else None),
    }
    seconds = {k: amount / speed for k, (amount, speed) in work.items() if speed}
    hours = {f"{g}_gpu_hours": {k: v / g / 3600 for k, v in seconds.items()} for g in (1, 8)}
    return hours | {"not_measured": [k for k, (_, speed) in work.items() if not speed]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=420, help="start no new part after this many seconds")
    parser.add_argument(
        "--out", default=None, help="results folder (default: benchmarks/results; smoke: a temporary one)"
    )
    parser.add_argument("--smoke", action="store_true", help="the tiny preset on any device, a few steps")
    parser.add_argument("--variants", default="channels_last,compile", help="ours' UNet variants to time ('' none)")
    parser.add_argument("--presets", default="celebahq256,demo", help="which presets, in this order")
    parser.add_argument("--skip", default="", help="parts to leave out, as PRESET.PART,... (e.g. demo.autoencoder)")
    args = parser.parse_args()
    begin = time.perf_counter()
    device = process_state().device
    if device.type == "cuda":
        use_fast_gpu_math()
    peak = peak_tflops(device)
    out = Path(args.out or (tempfile.mkdtemp() if args.smoke else Path(__file__).resolve().parent / "results"))
    out.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine(), "peak_bf16_tflops": peak, "smoke": args.smoke}

    def part(preset: str, name: str, fn, *arguments):
        """One measurement, recorded in the results file at once; a failure is recorded too, and the rest run."""
        if f"{preset}.{name}" in args.skip.split(","):
            return None
        if time.perf_counter() - begin > args.seconds:
            results[preset][name] = "skipped: out of time"
            return None
        start = time.perf_counter()
        try:
            results[preset][name] = fn(*arguments)
        except Exception as error:  # noqa: BLE001 - the other parts still run and report
            results[preset][name] = f"failed: {type(error).__name__}: {error}"
        took, now = time.perf_counter() - start, time.perf_counter() - begin
        print(f"[{now:5.0f} s] {preset} {name} ({took:.1f} s): {json.dumps(results[preset][name])}", flush=True)
        (out / "gpu_train.json").write_text(json.dumps(results, indent=2))
        return results[preset][name]

    if args.smoke:
        presets = {"tiny": dict(n=48, unet_batch=8, ae_batch=8, steps=1, rounds=1)}
    else:
        presets = {  # celebahq256 first: its targets (MFU, ours vs diffusers) are the ones still unmeasured
            "celebahq256": dict(n=2048, unet_batch=32, ae_batch=12, steps=8, rounds=3),
            "demo": dict(n=4096, unet_batch=128, ae_batch=32, steps=20, rounds=3, larger_batch=512),
        }
        presets = {k: v for k, v in presets.items() if k in args.presets.split(",")}
    compile_later = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset, p in presets.items():
            work, results[preset] = Path(tmp) / preset, {}
            config = load_config(ROOT / "configs" / f"{preset}.yaml")
            size = config.data.image_size
            precision = resolve_precision(config.diffusion_training.mixed_precision, device)
            accelerator = Accelerator(mixed_precision=precision)
            data = synthesize_dataset(work / "data", p["n"], size, seed=0, workers=os.cpu_count())
            ae_dir = work / "ae"
            build_autoencoder(config.autoencoder, size).save_pretrained(ae_dir, safe_serialization=True)
            caching = part(preset, "latent_caching", latent_caching, config, data, ae_dir, p["n"], work, device, peak)
            if not isinstance(caching, dict):
                continue
            cache_dir = Path(caching["cache_dir"])
            part(preset, "text_caching", text_caching, config, cache_dir, work, precision, device)
            unet_args = (config, cache_dir, ae_dir, data, p["unet_batch"], p["steps"], p["rounds"])
            profile = out / f"profile-{preset}.txt"
            part(preset, "unet", unet_training, *unet_args, [], work, accelerator, peak, profile)
            if "larger_batch" in p:  # a small UNet is CPU-bound per step: does a larger batch fill the GPU?
                larger = (*unet_args[:4], p["larger_batch"], *unet_args[5:])
                part(preset, f"unet_batch{p['larger_batch']}", unet_training, *larger, [], work, accelerator, peak)
            ae_args = (config, data, work, p["ae_batch"], 8 * p["steps"])
            part(preset, "autoencoder", autoencoder_training, *ae_args, "eager", False, peak)
            if not args.smoke:
                part(preset, "autoencoder_gan", autoencoder_training, *ae_args, "eager", True, peak)
                part(preset, "autoencoder_channels_last", autoencoder_training, *ae_args, "channels_last", False, peak)
            if preset != "celebahq256":
                part(
                    preset, "trainer", trainer_check, config, cache_dir, ae_dir, work, p["unet_batch"], 10 * p["steps"]
                )
            compile_later.append((preset, unet_args, work, accelerator))
        if not args.smoke:  # compiling last: it takes minutes
            variants = [v for v in args.variants.split(",") if v]
            for preset, unet_args, work, accelerator in compile_later if variants else []:
                part(preset, "unet_variants", unet_training, *unet_args, variants, work, accelerator, peak)
            try:
                results["projection"] = projection(results)
            except Exception as error:  # noqa: BLE001 - a part it needs failed or was skipped
                results["projection"] = f"failed: {type(error).__name__}: {error}"
    (out / "gpu_train.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results.get("projection"), indent=2))
    print(f"{time.perf_counter() - begin:.0f} s in all")
    print(f"wrote {out / 'gpu_train.json'}")


if __name__ == "__main__":
    main()
