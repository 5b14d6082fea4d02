"""Training throughput: our diffusion step (cached latents + cached text embeddings) versus the same
UNet trained the way diffusers' examples/text_to_image/train_text_to_image.py does it (VAE encode and
text encode inside every step), same batch, same loss, interleaved in one process.

    python benchmarks/train_throughput.py [--batch 32] [--repeats 6] [--smoke]

The peer gets its pixels already decoded in memory (the script's DataLoader would also decode and
resize PNGs every step), so the ratio is a lower bound on the saving.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from t2i.autoencoder.cache import LatentCache, cache_latents
from t2i.autoencoder.model import build_autoencoder, load_autoencoder
from t2i.config import load_config
from t2i.data.datasets import ImageCaptionDataset
from t2i.data.synthetic import synthesize_dataset
from t2i.diffusion.text_cache import TextEmbeddingCache
from t2i.diffusion.train import diffusion_loss, make_noise_scheduler
from t2i.diffusion.unet import build_unet
from t2i.text import load_text_encoder

from common import DEMO_MODEL, ROOT, interleaved, ratio, save, spread


def setup(preset: str, batch: int, work: Path):
    """Data, autoencoder, text encoder, caches and a fresh UNet for one preset."""
    config = load_config(ROOT / "configs" / f"{preset}.yaml")
    size = config.data.image_size
    data = synthesize_dataset(work / "data", batch, size, seed=0, workers=1)
    if preset == "demo":
        vae_dir = DEMO_MODEL / "vae"
    else:  # untrained weights time the same as trained ones
        vae_dir = work / "vae"
        build_autoencoder(config.autoencoder, size).save_pretrained(vae_dir, safe_serialization=True)
    cache_dir = cache_latents(vae_dir, data, work / "cache", flip=False, split_fractions=(1.0, 0.0, 0.0))
    vae = load_autoencoder(vae_dir)
    text_encoder = load_text_encoder(config.text).eval()
    images = ImageCaptionDataset(data, size, split=None, random_caption=False)
    items = [images.item(i, 0) for i in range(batch)]
    pixels = torch.stack([item["pixel_values"] for item in items])
    captions = [item["caption"] for item in items]
    text_cache = TextEmbeddingCache(work / "cache", text_encoder, sorted(set(captions)))
    cache = LatentCache(cache_dir, vae_dir, size)
    rows = torch.tensor([cache.records.index(r) for r in cache.records if r["id"] in {i["id"] for i in items}])
    latent_size = size // 2 ** (len(vae.config.block_out_channels) - 1)
    unet = build_unet(config.unet, vae.config.latent_channels, latent_size, text_encoder.hidden_size).train()
    return config, vae, text_encoder, cache, text_cache, rows, pixels, captions, unet


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--preset", default="demo", choices=["tiny", "demo"])
    parser.add_argument("--smoke", action="store_true", help="seconds-long check that the script runs (tiny preset)")
    args = parser.parse_args()
    if args.smoke:
        args.preset, args.batch, args.repeats = "tiny", 4, 1
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as work:
        config, vae, text_encoder, cache, text_cache, rows, pixels, captions, unet = setup(
            args.preset, args.batch, Path(work)
        )
        scale = vae.config.scaling_factor
        noise_scheduler = make_noise_scheduler(config)
        optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-5)
        gamma = config.diffusion_training.min_snr_gamma
        gen = torch.Generator().manual_seed(0)
        flips = torch.zeros(len(rows), dtype=torch.bool)

        def train_step(z0, context):
            loss, _, _ = diffusion_loss(unet, noise_scheduler, z0, context, gen, gamma)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        def ours():  # z0 = s·μ+σε from the latent cache, τθ(y) from the text cache
            train_step(cache.latents(rows, flips, gen) * scale, text_cache(captions))

        def peer():  # diffusers' recipe: z0 = s·E(x) and τθ(y) computed in the step (frozen, no grad)
            with torch.no_grad():
                z0 = vae.encode(pixels).latent_dist.sample(gen) * scale
                context, _ = text_encoder.encode(captions)
            train_step(z0, context)

        times = interleaved({"ours": ours, "peer": peer}, args.repeats)
    result = {
        "preset": args.preset,
        "batch": args.batch,
        "repeats": args.repeats,
        "images_per_s": {name: spread([args.batch / t for t in ts]) for name, ts in times.items()},
        "speedup_ours_over_peer": ratio(times["ours"], times["peer"]),
        "target": 2.0,
    }
    save("train_throughput", result, args.smoke)


if __name__ == "__main__":
    main()
