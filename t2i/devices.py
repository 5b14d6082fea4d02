"""Where and in what precision things run: `mixed_precision: auto`, the GPU's fast paths, host-to-device copies.

"auto" is bf16 autocast where the hardware runs bf16 natively (every CUDA GPU with bf16, and CPUs with AMX
or AVX512-BF16, found by timing a short probe rather than reading flags) and fp32 elsewhere: on a CPU that
only emulates bf16, autocast would be about 75× slower than fp32.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from t2i.config import PRECISIONS


def process_state() -> PartialState:
    """accelerate's device and process index/count, as `Accelerator()` will see them (`accelerate launch --cpu`
    included, which PartialState() alone does not read)."""
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


@functools.cache
def cpu_runs_bf16_natively() -> bool:
    """A bf16 matmul at most 3× slower than the fp32 one (fastest of 7 each, interleaved, on one thread): native
    bf16 is about as fast or faster, emulated bf16 about 75× slower, so the answer does not flip when the machine
    is busy (on several threads it did: a busy core stalls every thread of a short fp32 matmul at its barrier)."""
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    best = {torch.float32: float("inf"), torch.bfloat16: float("inf")}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(7):
            for dtype in best:
                x, y = a.to(dtype), b.to(dtype)
                start = time.perf_counter()
                x @ y
                best[dtype] = min(best[dtype], time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return best[torch.bfloat16] < 3 * best[torch.float32]


def free_cores(window_s: float = 0.1) -> int:
    """The cores that other processes leave free, at least 1: this process's cores less the cores kept busy over
    `window_s` (Linux's /proc/stat, niced work included; elsewhere the 1-minute load average). More threads than
    free cores is far slower, not a little: OpenMP threads wait at every barrier for a sibling that the OS has
    descheduled, and in a Jupyter kernel beside one niced job 2 threads ran a small model 11x slower than 1
    (benchmarks/RESULTS.md §10)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, cores - round(_busy_cores(window_s))))


def _busy_cores(window_s: float) -> float:
    def ticks() -> tuple[int, int, int]:  # (busy, all, cpus): user nice system idle iowait irq softirq steal
        lines = Path("/proc/stat").read_text().splitlines()
        values = [int(v) for v in lines[0].split()[1:9]]
        cpus = sum(line.startswith("cpu") and line[3:4].isdigit() for line in lines)
        return sum(values) - values[3] - values[4], sum(values), cpus

    try:
        busy_0, all_0, cpus = ticks()
        time.sleep(window_s)
        busy_1, all_1, _ = ticks()
        return cpus * (busy_1 - busy_0) / max(1, all_1 - all_0)
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows: no load figure
            return 0.0


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """accelerate's mixed_precision ("no", "bf16", "fp16") for a config's value, "auto" decided for `device`."""
    if precision not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_runs_bf16_natively() else "no"
    return "no"


def autocast(precision: str, device: torch.device | str):
    """torch.autocast for an accelerate precision ("no": a disabled context)."""
    device = torch.device(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def use_fast_gpu_math() -> None:
    """TF32 for the fp32 matmuls and convolutions left outside autocast (optimizer math is unaffected)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """x on `device` without waiting for the GPU: a pinned copy, sent asynchronously (a plain .to(cuda) of
    pageable memory waits until every queued kernel has run)."""
    if device.type != "cuda" or x.device.type != "cpu":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


def fits_on_device(nbytes: int, device: torch.device, share: float = 0.25) -> bool:
    """Whether `nbytes` take at most `share` of the GPU's free memory (always False off CUDA: the data is
    already in the CPU's memory)."""
    return device.type == "cuda" and nbytes <= share * torch.cuda.mem_get_info(device)[0]
