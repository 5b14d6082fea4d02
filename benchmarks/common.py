"""Shared by the benchmark scripts: the machine's description, interleaved timing, results files.

Every comparison is timed A, B, A, B, ... in one process, so drift (thermal, other load) hits both
sides alike; a ratio is computed per pair and reported as median, min and max.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
DEMO_MODEL = ROOT / "weights" / "demo"


def machine() -> dict:
    cpu, vector_flags = platform.processor(), []
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
        flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
        vector_flags = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))  # what bf16/fp32 speed hangs on
    return {
        "date": date.today().isoformat(),
        "cpu": cpu,
        "cpu_vector_flags": vector_flags,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def interleaved(functions: dict[str, callable], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, called in turn A, B, A, B, ... after `warmup` untimed rounds."""
    for _ in range(warmup):
        for fn in functions.values():
            fn()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratio(faster: list[float], slower: list[float]) -> dict:
    """slower / faster per interleaved pair (> 1: `faster` is faster)."""
    return spread([b / a for a, b in zip(faster, slower, strict=True)])


def save(name: str, result: dict, smoke: bool) -> Path:
    """benchmarks/results/NAME.json (smoke runs go to a temporary folder: they measure nothing)."""
    folder = Path(tempfile.mkdtemp()) if smoke else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2))
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return path
