"""Peak resident memory of generating one image and of one demo-preset training step, each measured
in a fresh child process (ru_maxrss), next to the RSS of just importing torch + diffusers.

    python benchmarks/memory.py [--batch 32] [--images 20000] [--captions 34515] [--smoke]

The training process holds its caches in memory: the step is measured with caches of the demo run's
size allocated and filled (latents: images × 2 flips × (μ, log σ²) × 4×16×16 float32; text embeddings:
captions × max_tokens × 384 float16, 34,515 unique captions in the demo run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import DEMO_MODEL, ROOT, save

PEAK = "import resource, json; print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))"

IMPORTS = "import torch, diffusers, transformers\n"

GENERATE = """
from t2i.pipeline import Text2ImagePipeline
pipe = Text2ImagePipeline.from_pretrained({model!r})
pipe("She has blond hair and wears a hat.", num_inference_steps={steps})
"""

TRAIN_STEP = """
import torch
from t2i.config import load_config
from t2i.diffusion.train import diffusion_loss, make_noise_scheduler
from t2i.diffusion.unet import build_unet, takes_pooled_text
from t2i.text import unet_condition
config = load_config({config!r})
latent = config.data.image_size // 2 ** (len(config.autoencoder.channels) - 1)
unet = build_unet(config.unet, config.autoencoder.latent_channels, latent, 384).train()
optimizer = torch.optim.AdamW(unet.parameters())
latent_cache = torch.ones({images}, 2, 2, config.autoencoder.latent_channels, latent, latent)
text_cache = torch.ones({captions}, config.text.max_tokens, 384, dtype=torch.float16)
g = torch.Generator().manual_seed(0)
z0 = torch.randn({batch}, config.autoencoder.latent_channels, latent, latent)  # cached latents ...
states = torch.randn({batch}, config.text.max_tokens, 384)  # ... and cached text embeddings
context = unet_condition(states, torch.ones(states.shape[:2]), takes_pooled_text(unet))
for _ in range(2):  # the second step has the optimizer state allocated
    loss, _, _ = diffusion_loss(unet, make_noise_scheduler(config), z0, context, generator=g, min_snr_gamma=5.0)
    loss.backward(); optimizer.step(); optimizer.zero_grad(set_to_none=True)
"""


def peak_bytes(code: str) -> int:
    out = subprocess.run([sys.executable, "-c", code + "\n" + PEAK], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEMO_MODEL))
    parser.add_argument("--batch", type=int, default=32, help="training batch (the demo preset's)")
    parser.add_argument("--images", type=int, default=20000, help="images in the latent cache")
    parser.add_argument("--captions", type=int, default=34515, help="unique captions in the text cache")
    parser.add_argument("--smoke", action="store_true", help="seconds-long check that the script runs")
    args = parser.parse_args()
    config, steps = ("configs/demo.yaml", 20) if not args.smoke else ("configs/tiny.yaml", 2)
    batch, images, captions = (2, 10, 10) if args.smoke else (args.batch, args.images, args.captions)
    gib = 2**30
    train_step = TRAIN_STEP.format(config=config, batch=batch, images=images, captions=captions)
    result = {
        "imports_only_gib": peak_bytes(IMPORTS) / gib,
        "generate_one_image_gib": peak_bytes(IMPORTS + GENERATE.format(model=args.model, steps=steps)) / gib,
        "train_step_gib": peak_bytes(IMPORTS + train_step) / gib,
        "train_batch": batch,
        "train_cache_images": images,
        "train_cache_captions": captions,
        "targets_gib": {"generate_one_image": 1.5, "train_step": 6.0},
    }
    save("memory", result, args.smoke)


if __name__ == "__main__":
    main()
