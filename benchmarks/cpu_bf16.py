"""`mixed_precision: auto` on this CPU (issue 16): what it resolves to, the sampling and training speed-ups
over fp32, and the demo model's alignment in both precisions.

    python benchmarks/cpu_bf16.py [--data data/faces20k] [--repeats 5] [--smoke]

- Sampling: the demo model's pipeline, 8 prompts, its default settings (DPM-Solver++ 20 steps, guidance 3),
  `mixed_precision` "no" (fp32) against "auto", interleaved.
- Training: one step of the demo preset's UNet (batch 32: forward, backward, AdamW), fp32 against bf16
  autocast, interleaved.
- Alignment: the same 64 prompts x 4 seeds of the default suite (as `t2i eval alignment`), scored by the
  committed classifier, in both precisions; the error bar is 1.96 standard errors over prompts.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from t2i.config import load_config
from t2i.devices import autocast, cpu_runs_bf16_natively, resolve_precision
from t2i.diffusion.train import diffusion_loss, make_noise_scheduler
from t2i.diffusion.unet import build_unet, takes_pooled_text
from t2i.eval.alignment import default_suite, generate_for_suite, summarize
from t2i.eval.classifier import load_classifier
from t2i.pipeline import Text2ImagePipeline
from t2i.text import unet_condition

from common import DEMO_MODEL, ROOT, interleaved, ratio, save, spread


def sampling(pipe, prompts: list[str], steps: int, repeats: int) -> dict:
    def run(precision: str):
        def call():
            pipe.mixed_precision = precision
            pipe(prompts, seed=0, num_inference_steps=steps)

        return call

    times = interleaved({"fp32": run("no"), "auto": run("auto")}, repeats)
    return {
        "seconds_per_call": {k: spread(v) for k, v in times.items()},
        "speedup_auto_over_fp32": ratio(times["auto"], times["fp32"]),
    }


def training(batch: int, repeats: int) -> dict:
    config = load_config(ROOT / "configs" / "demo.yaml")
    unet = build_unet(config.unet, 4, 16, 384).train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-5)
    noise_scheduler = make_noise_scheduler(config)
    z0, states, gen = torch.randn(batch, 4, 16, 16), torch.randn(batch, 40, 384), torch.Generator().manual_seed(0)
    context = unet_condition(states, torch.ones(batch, 40), takes_pooled_text(unet))

    def step(precision: str):
        def call():
            loss, _, _ = diffusion_loss(
                unet,
                noise_scheduler,
                z0,
                context,
                generator=gen,
                min_snr_gamma=5.0,
                autocast=lambda: autocast(precision, "cpu"),
            )
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return call

    times = interleaved({"fp32": step("no"), "bf16": step("bf16")}, repeats)
    return {"batch": batch, "seconds_per_step": {k: spread(v) for k, v in times.items()},
            "speedup_bf16_over_fp32": ratio(times["bf16"], times["fp32"])}  # fmt: skip


def alignment(pipe, data: str, n_prompts: int, n_per_prompt: int) -> dict:
    classifier = load_classifier(ROOT / "weights" / "classifier")
    cases = default_suite(data, n_prompts, seed=0, scorable=classifier.attributes)
    out = {}
    for precision in ("no", "auto"):
        pipe.mixed_precision = precision
        images = generate_for_suite(pipe, cases, n_per_prompt, pipe.defaults, seed=0)
        result = summarize(cases, n_per_prompt, classifier.predict(images)[0], classifier.attributes)
        per_prompt = np.array([p["alignment"] for p in result["per_prompt"]])
        error = 1.96 * per_prompt.std(ddof=1) / np.sqrt(len(per_prompt))
        out["fp32" if precision == "no" else "auto"] = {"alignment": result["alignment"], "error_bar": float(error)}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "faces20k"), help="the faces the suite is drawn from")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="seconds: the script runs")
    args = parser.parse_args()
    torch.manual_seed(0)
    pipe = Text2ImagePipeline.from_pretrained(DEMO_MODEL)
    prompts = [
        "The person has high cheekbones, and pointy nose. She is wearing lipstick.",
        "This man has bushy eyebrows and a goatee.",
        "He wears eyeglasses and has black hair.",
        "This woman has blond hair and is wearing a hat.",
    ] * 2
    steps, repeats, batch = (2, 1, 4) if args.smoke else (20, args.repeats, 32)
    result = {
        "cpu_runs_bf16_natively": cpu_runs_bf16_natively(),
        "auto_resolves_to": resolve_precision("auto", "cpu"),
        "sampling": sampling(pipe, prompts[: 2 if args.smoke else 8], steps, repeats),
        "training": training(batch, repeats),
    }
    if not args.smoke:
        result["alignment"] = alignment(pipe, args.data, 64, 4)
    save("cpu_bf16", result, args.smoke)
    return result


if __name__ == "__main__":
    main()
