import dataclasses

import pytest
import torch

from t2i.cli import main
from t2i.config import load_config
from t2i.families import load_pipeline
from t2i.pixelcnn.pipeline import PixelCNNPipeline
from t2i.training.token_prior import train_prior


def test_the_command_trains_a_folder_that_draws_the_same_bytes(tiny_pixelcnn, tmp_path):
    pipe = load_pipeline(tiny_pixelcnn)
    assert isinstance(pipe, PixelCNNPipeline) and pipe.family == "pixelcnn" and pipe.image_size == 32
    assert (tiny_pixelcnn.parent / "samples" / "samples-0000030.png").is_file()
    first = pipe(["She wears eyeglasses.", "He has a goatee."], seed=3, num_images_per_prompt=2, output_type="pt")
    again = pipe("He has a goatee.", seed=5, output_type="pt")  # image k of a call has seed + k
    assert first.shape == (4, 3, 32, 32) and torch.allclose(first[2], again[0], atol=1e-5)
    steps = []
    pipe("a hat", callback=lambda i, n: steps.append((i, n)))
    assert steps[-1] == (64, 64)  # one step per code of the 8×8 grid
    for run in ("a", "b"):
        argv = ["generate", "a hat", "--model", str(tiny_pixelcnn), "--guidance", "2", "--temperature", "0.8"]
        assert main([*argv, "--out", str(tmp_path / run)]) == 0
    (a,), (b,) = (list((tmp_path / run).glob("*.png")) for run in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()


def test_resume_continues_exactly(tiny_vq, tmp_path, straight_and_resumed):
    _, vq, cache = tiny_vq
    config = load_config("configs/pixelcnn-tiny.yaml")
    training = dataclasses.replace(config.pixelcnn_training, steps=12, checkpoint_every=6, sample_every=100)
    config.pixelcnn_training = training
    straight, resumed = straight_and_resumed(lambda out: train_prior(config, cache, vq, out))
    assert (straight / "pixelcnn.safetensors").read_bytes() == (resumed / "pixelcnn.safetensors").read_bytes()
    config.family = "gan"
    with pytest.raises(ValueError, match="train it with `t2i train gan`"):
        train_prior(config, cache, vq, tmp_path / "gan")
