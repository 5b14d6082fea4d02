"""The CPU thread count on a busy machine (issue 38): one demo-autoencoder training step (batch 8) with 1 thread
and with every core's thread, interleaved in one process, on a quiet machine, beside a niced process spinning on
one core, and beside one of normal priority; and what `t2i.devices.free_cores()` (the CLI's default) chose in
each.

    python benchmarks/threads_under_load.py [--repeats 10] [--smoke]

Run it on an otherwise idle machine: the "quiet" rows assume nothing else runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch

from t2i.autoencoder.model import build_autoencoder
from t2i.autoencoder.train import autoencoder_losses
from t2i.config import load_config
from t2i.devices import free_cores

from common import ROOT, interleaved, ratio, save, spread


def training_step(config, size: int, batch: int):
    model = build_autoencoder(config.autoencoder, size)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def step():
        _, nll, regularizer = autoencoder_losses(model, x, config, None)
        optimizer.zero_grad()
        (nll + regularizer).backward()
        optimizer.step()

    return step


def with_threads(step, threads: int):
    def call():
        torch.set_num_threads(threads)
        step()

    return call


def measure(step, cores: int, repeats: int) -> dict:
    choices = {"1 thread": 1, f"{cores} threads": cores}
    times = interleaved({name: with_threads(step, n) for name, n in choices.items()}, repeats)
    return {name: spread(t) for name, t in times.items()} | {
        "speedup_1_thread_over_all": ratio(times["1 thread"], times[f"{cores} threads"]),
        "free_cores_chose": free_cores(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="a tiny model, two repeats: checks the script runs")
    args = parser.parse_args()
    config = load_config(ROOT / "configs" / ("tiny.yaml" if args.smoke else "demo.yaml"))
    size = config.data.image_size
    step = training_step(config, size, 2 if args.smoke else 8)
    cores, repeats = torch.get_num_threads(), 2 if args.smoke else args.repeats
    result = {"step": f"autoencoder training step, {size}x{size}, batch {2 if args.smoke else 8}", "cores": cores}
    result["quiet"] = measure(step, cores, repeats)
    for name, nice in (("beside_one_niced_process", 10), ("beside_one_busy_process", 0)):
        spin = f"import os; os.nice({nice})\nwhile True: pass"  # one core taken
        busy = subprocess.Popen([sys.executable, "-c", spin])
        try:
            time.sleep(0.5)
            result[name] = measure(step, cores, repeats)
        finally:
            busy.kill()
    save("threads_under_load", result, args.smoke)


if __name__ == "__main__":
    main()
