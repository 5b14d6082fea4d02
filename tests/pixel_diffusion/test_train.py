import dataclasses

import torch

from t2i.cli import main
from t2i.config import load_config
from t2i.data.datasets import load_pixels
from t2i.data.pixels import PixelImages
from t2i.families import load_pipeline
from t2i.pipeline import SamplingSettings
from t2i.pixel_diffusion.train import train_pixel_diffusion


def test_images_in_memory_are_exactly_what_the_dataset_loads(tiny_faces):
    images = PixelImages(tiny_faces, 32)
    first = next(r for r in images.records)
    original = load_pixels(tiny_faces / "CelebA-HQ-img" / f"{first['id']}.png", 32)
    rows, flips = torch.tensor([0, 0]), torch.tensor([False, True])
    x = images.latents(rows, flips)
    assert torch.equal(x[0], original) and torch.equal(x[1], original.flip(2))
    assert torch.equal(PixelImages(tiny_faces, 32, flip=False).latents(rows, flips)[1], original)
    assert {r["split"] for r in images.records} == {"train", "val", "test"} and len(images) == 120


def test_loss_falls_on_one_batch(tiny_faces, text_cache_dir, tmp_path):
    config = load_config("configs/pixel-tiny.yaml")
    config.diffusion_training = dataclasses.replace(config.diffusion_training, steps=40, log_every=10, sample_every=100)
    train_pixel_diffusion(config, tiny_faces, tmp_path, text_cache_dir, overfit_batch=True)
    from t2i.checkpoint import latest_checkpoint, load_checkpoint

    history = load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))["history"]
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]


def test_folder_is_pixel_space_and_generates_the_same_bytes(tiny_pixel, tmp_path):
    pipe = load_pipeline(tiny_pixel)
    assert pipe.family == "pixel-diffusion" and pipe.autoencoder is None and pipe.image_size == 32
    assert not (tiny_pixel / "vae").exists() and pipe.scheduler_config["beta_schedule"] == "linear"
    images = pipe("She wears eyeglasses.", num_images_per_prompt=2, output_type="pt", settings=SamplingSettings(4))
    assert images.shape == (2, 3, 32, 32) and images.abs().max() <= 1.0  # clip_sample: x0 stays in [-1, 1]
    for run in ("a", "b"):
        assert (
            main(["generate", "a hat", "--model", str(tiny_pixel), "--steps", "3", "--out", str(tmp_path / run)]) == 0
        )
    (a,), (b,) = (list((tmp_path / run).glob("*.png")) for run in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()
