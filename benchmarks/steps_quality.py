"""Steps at equal quality: how many steps, and how much wall-clock, each fast sampler needs to reach
the alignment of DDPM with 1000 steps (within one point), on the same prompts and seeds.

    python benchmarks/steps_quality.py --classifier weights/classifier --data data/faces20k
        [--prompts 8] [--n-per-prompt 1] [--steps 5 10 20 50] [--smoke]

A small suite keeps this under 5 minutes, so one point is below its statistical resolution: the
binomial standard error is printed with every figure. `t2i eval report` runs the larger suite.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from t2i.eval.alignment import default_suite, generate_for_suite, summarize
from t2i.eval.classifier import load_classifier
from t2i.pipeline import SamplingSettings, Text2ImagePipeline

from common import DEMO_MODEL, save


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--classifier", required=True, help="folder from `t2i eval train-classifier`")
    parser.add_argument("--data", required=True, help="dataset with an attribute file (the prompt suite)")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n-per-prompt", type=int, default=1)
    parser.add_argument("--schedulers", nargs="+", default=["dpm++", "ddim", "euler", "unipc"])
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--ddpm-steps", type=int, default=1000)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--smoke", action="store_true", help="seconds-long check that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.prompts, args.schedulers, args.steps, args.ddpm_steps = 2, ["dpm++"], [2], 4
    pipe = Text2ImagePipeline.from_pretrained(args.model)
    classifier = load_classifier(args.classifier)
    cases = default_suite(args.data, args.prompts, seed=0, scorable=classifier.attributes)

    def measure(scheduler: str, steps: int) -> dict:
        start = time.perf_counter()
        with torch.inference_mode():
            settings = SamplingSettings(steps, args.guidance, scheduler)
            images = generate_for_suite(pipe, cases, args.n_per_prompt, settings, seed=0)
        seconds = time.perf_counter() - start
        result = summarize(cases, args.n_per_prompt, classifier.predict(images)[0], classifier.attributes)
        se = 100 * math.sqrt(result["alignment"] * (1 - result["alignment"]) / result["assertions"])
        print(
            f"{scheduler:6s} {steps:5d} steps: alignment {100 * result['alignment']:.1f}% (± {se:.1f}), {seconds:.1f} s"
        )
        return {"alignment": result["alignment"], "standard_error_points": se, "seconds": seconds}

    ddpm = measure("ddpm", args.ddpm_steps)
    samplers = {}
    for scheduler in args.schedulers:
        runs = {steps: measure(scheduler, steps) for steps in sorted(args.steps)}
        reached = [s for s, r in runs.items() if r["alignment"] >= ddpm["alignment"] - 0.01]
        samplers[scheduler] = {
            "runs": runs,
            "steps_to_reach_ddpm": reached[0] if reached else None,
            "speedup_over_ddpm": ddpm["seconds"] / runs[reached[0]]["seconds"] if reached else None,
        }
    result = {
        "prompts": args.prompts,
        "images_per_prompt": args.n_per_prompt,
        "guidance": args.guidance,
        "ddpm": {"steps": args.ddpm_steps, **ddpm},
        "samplers": samplers,
        "target": "dpm++ within 1 point of DDPM-1000 at <= 20 steps (>= 50x faster)",
    }
    save("steps_quality", result, args.smoke)


if __name__ == "__main__":
    main()
