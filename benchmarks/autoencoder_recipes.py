"""Autoencoder recipes compared at equal 2-core CPU wall-clock, trained on a GPU.

Issue 3 asks for validation PSNR >= 30 dB from at most 45 minutes of training on 2 CPU cores. Rankings
of 6-minute runs did not hold at 45 minutes, and one 45-minute CPU run tests one recipe. So:

    python benchmarks/autoencoder_recipes.py time              # CPU: seconds per step of each recipe
    python benchmarks/autoencoder_recipes.py pack --data DIR   # train/val pixels into one safetensors file
    python benchmarks/autoencoder_recipes.py train --recipe NAME [--scale 1.0]   # GPU (or CPU)

`time` measures each recipe's training step here, interleaved, and gives it the number of steps that
costs what the demo preset's 4,800 steps cost (its measured 45-minute-budget run); `train` trains a
recipe for that many steps (x scale) in float32 with TF32 off, so a GPU follows the CPU's arithmetic,
and prints the validation PSNR that `t2i eval autoencoder` would report. Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file

from t2i.autoencoder.model import build_autoencoder, reconstruct
from t2i.autoencoder.train import autoencoder_losses
from t2i.config import diffusers_schedule_name, load_config
from t2i.data.datasets import ImageCaptionDataset
from t2i.eval.autoencoder import psnr

from common import RESULTS, ROOT, save

BASE_STEPS = 4800  # the demo preset's steps: 42 min 47 s on 2 cores (runs/ae-v4)
TIMES = RESULTS / "autoencoder_recipe_times.json"

# name -> overrides of configs/demo.yaml (autoencoder.*, autoencoder_training.*) plus betas / ema_decay
RECIPES: dict[str, dict] = {
    "demo": {},
    "betas-0.9": {"betas": (0.9, 0.999)},
    "betas-0.9-lr2e-3": {"betas": (0.9, 0.999), "lr": 2e-3},
    "lr1.6e-3": {"lr": 1.6e-3},
    "ema": {"ema_decay": 0.999},
    "batch4": {"batch_size": 4},
    "ch32-64-128": {"channels": (32, 64, 128)},
    "ch64-64-64": {"channels": (64, 64, 64)},
    "ch32-96-96": {"channels": (32, 96, 96)},
    "ch16-64-128": {"channels": (16, 64, 128)},
    "layers2": {"layers_per_block": 2},
    "attention": {"mid_block_attention": True},
    "groups32": {"norm_num_groups": 32},
}


def recipe_config(name: str):
    """configs/demo.yaml with the recipe's overrides; returns (config, betas, ema_decay)."""
    config = load_config(ROOT / "configs" / "demo.yaml")
    extra = dict(RECIPES[name])
    betas, ema_decay = extra.pop("betas", (0.5, 0.9)), extra.pop("ema_decay", None)
    for key, value in extra.items():
        section = config.autoencoder if hasattr(config.autoencoder, key) else config.autoencoder_training
        setattr(section, key, value)
    return config, betas, ema_decay


def training_step(model, opt, schedule, ema, x, config):
    """One step of t2i.autoencoder.train without the GAN: loss = nll + KL, Adam, LR schedule, EMA."""
    _, nll, regularizer = autoencoder_losses(model, x, config, None)
    opt.zero_grad(set_to_none=True)
    (nll + regularizer).backward()
    opt.step()
    schedule.step()
    if ema is not None:
        ema.step(model.parameters())
    return nll.item() / x[0].numel()


def make_run(name: str, device: str, steps: int):
    """A fresh model, Adam, warm-up + cosine schedule over `steps`, and EMA if the recipe has one."""
    config, betas, ema_decay = recipe_config(name)
    torch.manual_seed(config.autoencoder_training.seed)
    model = build_autoencoder(config.autoencoder, config.data.image_size).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=config.autoencoder_training.lr, betas=betas)
    tc = config.autoencoder_training
    schedule = get_scheduler(
        diffusers_schedule_name(tc.lr_schedule, "autoencoder_training"),
        opt,
        num_warmup_steps=tc.warmup_steps,
        num_training_steps=steps,
    )
    ema = EMAModel(model.parameters(), decay=ema_decay) if ema_decay else None
    return config, model, opt, schedule, ema


def shape(name: str) -> tuple:
    """What sets a recipe's step time: the architecture and the batch (optimizer settings cost nothing)."""
    config, _, _ = recipe_config(name)
    a = config.autoencoder
    return (tuple(a.channels), a.layers_per_block, a.mid_block_attention, config.autoencoder_training.batch_size)


def time_recipes(data_dir: str, rounds: int, steps_per_round: int, smoke: bool) -> dict:
    """Seconds per training step of each recipe shape on this machine, interleaved round-robin; median over rounds."""
    torch.manual_seed(0)
    data = ImageCaptionDataset(data_dir, 64, "train")
    pool = torch.stack([data.item(i, 0)["pixel_values"] for i in range(min(64, len(data)))])
    names = ["demo", "batch4"] if smoke else list(RECIPES)
    shapes = {shape(name): name for name in reversed(names)}  # one recipe per shape times it
    runs = {key: make_run(name, "cpu", BASE_STEPS) for key, name in shapes.items()}
    seconds: dict[tuple, list[float]] = {key: [] for key in runs}
    for r in range(rounds + 1):  # round 0 warms up
        for key, (config, model, opt, schedule, ema) in runs.items():
            batch = config.autoencoder_training.batch_size
            start = time.perf_counter()
            for s in range(steps_per_round):
                x = pool[(s * batch) % len(pool) :][:batch]
                training_step(model, opt, schedule, ema, x, config)
            if r:
                seconds[key].append((time.perf_counter() - start) / steps_per_round)
        print(f"round {r}/{rounds}", {shapes[k]: round(statistics.median(v), 3) for k, v in seconds.items() if v})
    per_step = {key: statistics.median(v) for key, v in seconds.items()}
    result = {name: {"s_per_step": per_step[shape(name)], "steps": equal_cost_steps(per_step, name)} for name in names}
    save(TIMES.stem, result, smoke)
    return result


def equal_cost_steps(per_step: dict[tuple, float], name: str) -> int:
    """The steps of recipe `name` that cost what BASE_STEPS of the demo recipe cost, given seconds per step by shape."""
    return round(BASE_STEPS * per_step[shape("demo")] / per_step[shape(name)])


def budget_steps(name: str) -> int:
    """equal_cost_steps from the recorded `time` results."""
    times = json.loads(TIMES.read_text())
    return equal_cost_steps({shape(n): row["s_per_step"] for n, row in times.items() if n in RECIPES}, name)


def pack(data_dir: str, out: str) -> None:
    """The train and val splits as uint8 tensors (the recipe runs read them instead of 20,000 PNGs)."""
    tensors = {}
    for split in ("train", "val"):
        data = ImageCaptionDataset(data_dir, 64, split, random_caption=False)
        x = torch.stack([data.item(i, 0)["pixel_values"] for i in range(len(data))])
        tensors[split] = ((x + 1) * 127.5).round().to(torch.uint8)
    save_file(tensors, out)


def train(name: str, packed: str, scale: float, device: str) -> dict:
    """Train one recipe for its CPU-budget steps x scale on `device`; validation PSNR at the end."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    steps = round(budget_steps(name) * scale)
    pixels = {k: v.to(device).float() / 127.5 - 1 for k, v in load_file(packed).items()}
    train_x, val_x = pixels["train"], pixels["val"]
    config, model, opt, schedule, ema = make_run(name, device, steps)
    batch = config.autoencoder_training.batch_size
    generator = torch.Generator(device).manual_seed(config.autoencoder_training.seed)
    start, order, losses = time.perf_counter(), torch.empty(0, dtype=torch.long, device=device), []
    for step in range(steps):
        if len(order) < batch:  # a new epoch: a fresh permutation
            order = torch.randperm(len(train_x), generator=generator, device=device)
        idx, order = order[:batch], order[batch:]
        x = train_x[idx]
        flip = torch.rand(batch, generator=generator, device=device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)  # random horizontal flips, as in training
        losses.append(training_step(model, opt, schedule, ema, x, config))
        if (step + 1) % 1000 == 0:
            print(f"{name}: step {step + 1}/{steps}, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    if ema is not None:
        ema.copy_to(model.parameters())
    model.eval()
    val_psnr = psnr(val_x, reconstruct(model, val_x)).mean().item()
    result = {
        "recipe": name,
        "steps": steps,
        "scale": scale,
        "val_psnr_db": round(val_psnr, 3),
        "final_rec_loss": round(statistics.mean(losses[-100:]), 5),
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "seconds": round(time.perf_counter() - start, 1),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="time: 2 recipes, 1 round of 1 step, nothing recorded")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("time")
    t.add_argument("--data", default=str(ROOT / "data" / "faces20k"))
    t.add_argument("--rounds", type=int, default=5)
    t.add_argument("--steps", type=int, default=6, help="steps per recipe per round")
    k = sub.add_parser("pack")
    k.add_argument("--data", required=True)
    k.add_argument("--out", required=True)
    r = sub.add_parser("train")
    r.add_argument("--recipe", required=True, choices=sorted(RECIPES))
    r.add_argument("--packed", required=True)
    r.add_argument("--scale", type=float, default=1.0, help="multiply the CPU-budget steps")
    r.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    if args.command == "time":
        rounds, steps = (1, 1) if args.smoke else (args.rounds, args.steps)
        time_recipes(args.data, rounds, steps, args.smoke)
    elif args.command == "pack":
        pack(args.data, args.out)
    else:
        train(args.recipe, args.packed, args.scale, args.device)


if __name__ == "__main__":
    main()
