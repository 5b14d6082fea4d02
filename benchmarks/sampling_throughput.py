"""Sampling throughput: Text2ImagePipeline versus diffusers' StableDiffusionPipeline on our exported
model (same scheduler, steps, guidance, batch, same images), and the speed levers on our side.

    python benchmarks/sampling_throughput.py [--batch 4] [--steps 20] [--repeats 5] [--compile] [--smoke]

Levers, each timed against the plain pipeline in the same interleaved run: channels_last UNet, bf16
autocast, torch.inference_mode instead of no_grad, torch.compile (with --compile: compiling takes
minutes on 2 cores). For each, the largest pixel difference from the plain pipeline's images is
reported (a lever that changes images must then pass the alignment check before it is kept).
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from diffusers import StableDiffusionPipeline

from t2i.export import export_diffusers
from t2i.pipeline import Text2ImagePipeline

from common import DEMO_MODEL, interleaved, ratio, save, spread

PROMPTS = [
    "The person has high cheekbones, and pointy nose. She is wearing lipstick.",
    "This man has bushy eyebrows and a goatee.",
    "He wears eyeglasses and has black hair.",
    "This woman has blond hair and is wearing a hat.",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--batch", type=int, default=4, help="prompts per call (one image each)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes to compile)")
    parser.add_argument("--smoke", action="store_true", help="seconds-long check that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.batch, args.steps, args.repeats = 1, 2, 1
    prompts = (PROMPTS * args.batch)[: args.batch]
    common = dict(num_inference_steps=args.steps, guidance_scale=args.guidance)

    ours = Text2ImagePipeline.from_pretrained(args.model)
    with tempfile.TemporaryDirectory() as folder:
        theirs = StableDiffusionPipeline.from_pretrained(export_diffusers(args.model, folder, "dpm++"))
    theirs.set_progress_bar_config(disable=True)
    fast = Text2ImagePipeline.from_pretrained(args.model)  # the same model, with the levers switched on in turn

    def run_ours(pipe=ours):
        return pipe(prompts, seed=0, scheduler="dpm++", output_type="pt", **common)

    def run_theirs():
        generators = [torch.Generator().manual_seed(k) for k in range(len(prompts))]
        return theirs(prompts, generator=generators, output_type="pt", **common).images

    def run_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return run_ours(fast)

    def run_inference_mode():
        with torch.inference_mode():
            return run_ours(fast)

    baseline = ((run_ours().clamp(-1, 1) + 1) / 2).float()
    same_images = (run_theirs().float() - baseline).abs().max().item() * 255
    functions = {"ours": run_ours, "diffusers": run_theirs}
    times = interleaved(functions, args.repeats)
    result = {
        "batch": args.batch,
        "steps": args.steps,
        "guidance": args.guidance,
        "scheduler": "dpm++",
        "images_per_s": {name: spread([args.batch / t for t in ts]) for name, ts in times.items()},
        "speedup_ours_over_diffusers": ratio(times["ours"], times["diffusers"]),
        "max_pixel_difference_diffusers_vs_ours_0_255": same_images,
        "target": 1.2,
        "levers": {},
    }
    levers = {"inference_mode": run_inference_mode, "bf16_autocast": run_bf16, "channels_last": lambda: run_ours(fast)}
    if args.compile:
        levers["torch_compile"] = lambda: run_ours(fast)
    for name, run in levers.items():
        fast.unet.to(memory_format=torch.channels_last if name == "channels_last" else torch.contiguous_format)
        if name == "torch_compile":
            fast.unet = torch.compile(fast.unet)
        images = ((run().clamp(-1, 1) + 1) / 2).float()  # also the warm-up (and the compile)
        pairs = max(2, args.repeats // 2)  # a bf16 call takes ~40 s here
        lever_times = interleaved({"plain": run_ours, name: run}, pairs, warmup=0)
        result["levers"][name] = {
            "speedup_over_plain": ratio(lever_times[name], lever_times["plain"]),
            "max_pixel_difference_0_255": (images - baseline).abs().max().item() * 255,
        }
    save("sampling_throughput", result, args.smoke)


if __name__ == "__main__":
    main()
