"""The same PNG bytes from the same seeds, before and after a change to the code (issue 32).

Every family's tiny preset is trained (the session fixtures), then draws with fixed seeds; the latent model also
edits (image-to-image, inpainting, a word swap with local blend and attention maps), and the committed demo model
draws. The SHA-256 of each PNG is compared with the one recorded on this machine (`tests/golden_bytes.json`, keyed
by CPU, its vector unit, torch version and thread count: float results differ between machines, never between runs
on one); a family added after a machine's record is checked there once it is recorded again. Record a machine's
hashes with the code you trust: T2I_RECORD_GOLDEN=1 make test.
"""

import hashlib
import io
import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import t2i

GOLDEN = Path(__file__).with_name("golden_bytes.json")
PROMPT = "This woman has blond hair and wears eyeglasses. She is smiling."


def _machine() -> str:
    """CPU model, its widest vector unit (machines sold under one name differ: AVX-512 or AVX2 only), torch,
    threads."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
        flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
        cpu += next((f" {unit}" for unit in ("avx512_bf16", "avx512f", "avx2") if unit in flags), "")
    return f"{cpu} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def _png_sha256(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _draws(tiny_model, tiny_pixel, tiny_gan, tiny_vq, tiny_pixelcnn, tiny_dalle, tiny_cascade) -> dict[str, str]:
    """name -> the SHA-256 of each PNG drawn."""
    hashes = {}
    for name, folder in (("demo", "weights/demo"), ("latent", tiny_model), ("pixel", tiny_pixel)):
        pipe = t2i.load_pipeline(folder)
        pipe.mixed_precision = "no"
        hashes[name] = _png_sha256(pipe(PROMPT, seed=3, num_inference_steps=4)[0])
    token_families = (("vq", tiny_vq[0]), ("pixelcnn", tiny_pixelcnn), ("dalle", tiny_dalle[0]))
    for name, folder in (("gan", tiny_gan), ("cascade", tiny_cascade), *token_families):
        hashes[name] = _png_sha256(t2i.load_pipeline(folder)(PROMPT, seed=3)[0])
    pipe = t2i.load_pipeline(tiny_model)
    pipe.mixed_precision = "no"
    source = pipe(PROMPT, seed=3, num_inference_steps=4, output_type="pt").clamp(-1, 1)
    mask = torch.zeros(1, 1, pipe.image_size, pipe.image_size)
    mask[..., : pipe.image_size // 2] = 1
    edits = {
        "img2img": {"image": source, "strength": 0.6},
        "inpaint": {"image": source, "mask_image": mask},
        "swap": {"source_prompt": PROMPT.replace("blond", "black"), "local_blend": True, "self_swap_steps": 0.5},
    }
    for name, edit in edits.items():
        hashes[name] = _png_sha256(pipe("A man with a hat.", seed=5, num_inference_steps=4, **edit)[0])
    images, maps = pipe(PROMPT, seed=5, num_inference_steps=4, return_attention=True)
    hashes["attention"] = hashlib.sha256(np.ascontiguousarray(maps[0].maps.numpy()).tobytes()).hexdigest()
    return hashes


def test_every_family_draws_the_recorded_bytes(
    tiny_model, tiny_pixel, tiny_gan, tiny_vq, tiny_pixelcnn, tiny_dalle, tiny_cascade
):
    hashes = _draws(tiny_model, tiny_pixel, tiny_gan, tiny_vq, tiny_pixelcnn, tiny_dalle, tiny_cascade)
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    machine = _machine()
    if os.environ.get("T2I_RECORD_GOLDEN") == "1":
        recorded[machine] = hashes
        GOLDEN.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    if machine not in recorded:
        pytest.skip(f"no bytes recorded for {machine}: record them with T2I_RECORD_GOLDEN=1 before a change")
    assert {name: hashes[name] for name in recorded[machine]} == recorded[machine]  # families added later: not yet
