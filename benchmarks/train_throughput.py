"""Training throughput: our diffusion step (cached latents + cached text embeddings) versus the same
UNet trained the way diffusers' examples/text_to_image/train_text_to_image.py does it (VAE encode and
text encode inside every step), same batch, same loss, interleaved in one process.

    python benchmarks/train_throughput.py [--batch 32] [--repeats 6] [--compile] [--smoke]

The peer gets its pixels already decoded in memory (the script's DataLoader would also decode and
resize PNGs every step), so the ratio is a lower bound on the saving.

It also counts the FLOPs per image of each part (torch's FlopCounterMode) for the timed preset and for
celebahq256: caching can at most remove the frozen encoders' share, so (encoders + UNet step) / UNet
step bounds the speed-up wherever both sides run at the same FLOP rate (e.g. a GPU). With --compile
it also times our step with a torch.compile'd copy of the UNet (compiling takes minutes).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from t2i.autoencoder.cache import LatentCache, cache_latents
from t2i.autoencoder.model import build_autoencoder, load_autoencoder
from t2i.config import load_config
from t2i.data.datasets import ImageCaptionDataset
from t2i.data.synthetic import synthesize_dataset
from t2i.diffusion.train import diffusion_loss, make_noise_scheduler
from t2i.diffusion.unet import build_unet, takes_pooled_text
from t2i.text import load_text_encoder, unet_condition
from t2i.training.text_cache import TextEmbeddingCache

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


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def caching_bound(preset: str, caption: str) -> dict:
    """GFLOPs per image of the VAE encoder, the text encoder and the UNet's training step (forward and
    backward), and the speed-up that caching the first two allows at an equal FLOP rate."""
    config = load_config(ROOT / "configs" / f"{preset}.yaml")
    size = config.data.image_size
    text_encoder = load_text_encoder(config.text).eval()
    with torch.no_grad():
        text = flops(lambda: text_encoder.encode([caption]))
    with torch.device("meta"):  # shapes only: no memory, no time
        vae = build_autoencoder(config.autoencoder, size)
        latent = size // config.autoencoder.downsample_factor
        unet = build_unet(config.unet, config.autoencoder.latent_channels, latent, text_encoder.hidden_size)
        with torch.no_grad():
            encode = flops(lambda: vae.encode(torch.zeros(1, 3, size, size)))
        states = torch.zeros(1, config.text.max_tokens, text_encoder.hidden_size)
        context = unet_condition(states, torch.ones(1, config.text.max_tokens), takes_pooled_text(unet))
        z = torch.zeros(1, config.autoencoder.latent_channels, latent, latent)
        step = flops(lambda: unet(z, torch.tensor([500]), **context).sample.sum().backward())
    gflops = {"vae_encode": encode / 1e9, "text_encode": text / 1e9, "unet_forward_backward": step / 1e9}
    return {"gflops_per_image": gflops, "bound": (encode + text + step) / step}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--preset", default="demo", choices=["tiny", "demo"])
    parser.add_argument("--compile", action="store_true", help="also time our step with a compiled UNet")
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
        gamma = config.diffusion_training.min_snr_gamma
        gen = torch.Generator().manual_seed(0)
        flips = torch.zeros(len(rows), dtype=torch.bool)

        def trainer(model):
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

            def train_step(z0, context):
                loss, _, _ = diffusion_loss(model, noise_scheduler, z0, context, generator=gen, min_snr_gamma=gamma)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            return train_step

        train_step, pooled = trainer(unet), takes_pooled_text(unet)

        def cached(step):  # z0 = s·μ+σε from the latent cache, τθ(y) from the text cache
            return lambda: step(
                cache.latents(rows, flips, gen) * scale, unet_condition(*text_cache.with_mask(captions), pooled)
            )

        def peer():  # diffusers' recipe: z0 = s·E(x) and τθ(y) computed in the step (frozen, no grad)
            with torch.no_grad():
                z0 = vae.encode(pixels).latent_dist.sample(gen) * scale
                context = unet_condition(*text_encoder.encode(captions), pooled)
            train_step(z0, context)

        contestants = {"ours": cached(train_step), "peer": peer}
        if args.compile:  # the same step on a compiled copy of the UNet; the warm-up round compiles it
            compiled = copy.deepcopy(unet)
            compiled.compile()
            contestants["ours_compiled"] = cached(trainer(compiled))
        times = interleaved(contestants, args.repeats)
    presets = [args.preset] if args.smoke else [args.preset, "celebahq256"]
    result = {
        "preset": args.preset,
        "batch": args.batch,
        "repeats": args.repeats,
        "images_per_s": {name: spread([args.batch / t for t in ts]) for name, ts in times.items()},
        "speedup_ours_over_peer": ratio(times["ours"], times["peer"]),
        **({"speedup_compiled_over_ours": ratio(times["ours_compiled"], times["ours"])} if args.compile else {}),
        "target": 2.0,
        "caching_bound_at_equal_flop_rate": {p: caching_bound(p, captions[0]) for p in presets},
    }
    save("train_throughput", result, args.smoke)


if __name__ == "__main__":
    main()
