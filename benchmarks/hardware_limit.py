"""The hardware limit: FLOPs of sampling (torch.utils.flop_counter over one whole pipeline call)
against this machine's measured matmul rate in fp32 and bf16, and the profile of what the time goes to.

    python benchmarks/hardware_limit.py [--batch 4] [--steps 20] [--repeats 3] [--smoke]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from t2i.pipeline import Text2ImagePipeline

from common import DEMO_MODEL, save, spread


def matmul_rate(dtype: torch.dtype, n: int, budget_s: float = 3.0) -> float:
    """Best FLOP/s of an n×n by n×n matmul (2n³ FLOPs), repeated within a time budget (a dtype without
    hardware support can be 100× slower)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    start = time.perf_counter()
    a @ b
    best, spent = time.perf_counter() - start, 0.0
    for _ in range(20):
        if spent > budget_s:
            break
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
        spent += time.perf_counter() - start
    return 2 * n**3 / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--matmul-size", type=int, default=1024)
    parser.add_argument("--smoke", action="store_true", help="seconds-long check that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.batch, args.steps, args.repeats, args.matmul_size = 1, 2, 1, 256
    pipe = Text2ImagePipeline.from_pretrained(args.model)
    prompts = ["She has blond hair and wears a hat."] * args.batch

    def sample():
        return pipe(prompts, num_inference_steps=args.steps, guidance_scale=3.0, output_type="pt")

    with FlopCounterMode(display=False) as counter:
        sample()
    flops = counter.get_total_flops()
    unet_flops = sum(counter.get_flop_counts().get("UNet2DConditionModel", {}).values())
    sample()  # warm-up
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        sample()
        seconds.append(time.perf_counter() - start)
    rate = {str(d).removeprefix("torch."): matmul_rate(d, args.matmul_size) for d in (torch.float32, torch.bfloat16)}
    achieved = flops / min(seconds)

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        sample()
    table = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    total = sum(e.self_cpu_time_total for e in profiler.key_averages())
    top = [
        {"op": e.key, "share_of_cpu_time": e.self_cpu_time_total / total}
        for e in sorted(profiler.key_averages(), key=lambda e: -e.self_cpu_time_total)[:8]
    ]
    result = {
        "batch": args.batch,
        "steps": args.steps,
        "guidance": 3.0,
        "flops_per_image": flops / args.batch,
        "unet_share_of_flops": unet_flops / flops,
        "seconds_per_call": spread(seconds),
        "achieved_flop_per_s": achieved,
        "matmul_flop_per_s": rate,
        "fraction_of_fp32_matmul_rate": achieved / rate["float32"],
        "fraction_of_bf16_matmul_rate": achieved / rate["bfloat16"],
        "target_fraction_of_bf16": 0.5,
        "profile_top_ops": top,
    }
    print(table)
    save("hardware_limit", result, args.smoke)


if __name__ == "__main__":
    main()
