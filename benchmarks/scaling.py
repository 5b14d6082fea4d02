"""Scaling: images/s and time per step of our training step and of a guided sampling step as the
batch grows (1, 4, 16, 64) and as the image grows (32, 64, 128 px, i.e. 8, 16, 32 latent side), on
the demo preset's UNet; plotted to benchmarks/results/scaling.png.

    python benchmarks/scaling.py [--batches 1 4 16 64] [--sizes 32 64 128] [--size-batch 16] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from t2i.config import load_config  # noqa: E402
from t2i.diffusion.train import diffusion_loss, make_noise_scheduler  # noqa: E402
from t2i.diffusion.unet import build_unet, takes_pooled_text  # noqa: E402
from t2i.text import unet_condition  # noqa: E402

from common import ROOT, save  # noqa: E402


def seconds_per_step(config, image_size: int, batch: int, repeats: int) -> dict:
    """Median seconds of one training step (fwd + bwd + AdamW) and of one guided sampling step (2·batch fwd)."""
    latent = image_size // 2 ** (len(config.autoencoder.channels) - 1)
    channels = config.autoencoder.latent_channels
    unet = build_unet(config.unet, channels, latent, 384)
    optimizer = torch.optim.AdamW(unet.parameters())
    scheduler, g = make_noise_scheduler(config), torch.Generator().manual_seed(0)
    z0, states = torch.randn(batch, channels, latent, latent), torch.randn(batch, config.text.max_tokens, 384)
    context = unet_condition(states, torch.ones(states.shape[:2]), takes_pooled_text(unet))
    t = torch.full((2 * batch,), 500)

    def train():
        loss, _, _ = diffusion_loss(unet, scheduler, z0, context, generator=g, min_snr_gamma=5.0)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def sample():
        unet(torch.cat([z0, z0]), t, **{name: torch.cat([value, value]) for name, value in context.items()})

    out = {}
    for name, fn in (("train", train), ("sample", sample)):
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--size-batch", type=int, default=16, help="batch of the image-size sweep")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="seconds-long check that the script runs")
    args = parser.parse_args()
    preset = "tiny" if args.smoke else "demo"
    if args.smoke:
        args.batches, args.sizes, args.size_batch, args.repeats = [1, 2], [32], 2, 1
    config = load_config(ROOT / "configs" / f"{preset}.yaml")
    torch.manual_seed(0)
    by_batch = {b: seconds_per_step(config, config.data.image_size, b, args.repeats) for b in args.batches}
    by_size = {s: seconds_per_step(config, s, args.size_batch, args.repeats) for s in args.sizes}
    result = {
        "preset": preset,
        "by_batch": {
            b: {k: {"s_per_step": v, "images_per_s": b / v} for k, v in r.items()} for b, r in by_batch.items()
        },
        "by_image_size": {
            s: {k: {"s_per_step": v, "images_per_s": args.size_batch / v} for k, v in r.items()}
            for s, r in by_size.items()
        },
        "size_batch": args.size_batch,
    }
    path = save("scaling", result, args.smoke)

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for kind in ("train", "sample"):
        left.plot(args.batches, [b / by_batch[b][kind] for b in args.batches], "o-", label=kind)
        right.plot(args.sizes, [by_size[s][kind] for s in args.sizes], "o-", label=kind)
    right.plot(args.sizes, [by_size[args.sizes[0]]["train"] * (s / args.sizes[0]) ** 2 for s in args.sizes], "k:",
               label="train, ∝ pixels")  # fmt: skip
    left.set(xscale="log", xlabel="batch", ylabel="images/s", title=f"{preset} UNet, {config.data.image_size} px")
    right.set(xscale="log", yscale="log", xlabel="image side (px)", ylabel="s per step",
              title=f"batch {args.size_batch}")  # fmt: skip
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"), dpi=90)
    print(f"wrote {path.with_suffix('.png')}")


if __name__ == "__main__":
    main()
