import dataclasses
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from t2i.cli import main
from t2i.config import load_config
from t2i.families import load_pipeline
from t2i.family_pipeline import gumbel_noise
from t2i.training.token_prior import train_prior
from t2i.vq_transformer.model import TokenTransformer
from t2i.vq_transformer.settings import TokenSamplingSettings


def test_cached_sampling_gives_the_tokens_of_uncached_sampling(tiny_vq):
    pipe = load_pipeline(tiny_vq[0])
    (states, mask), (empty, empty_mask) = (pipe.text_encoder.encode(p) for p in (["a hat", "a goatee"], ["", ""]))
    gumbel = torch.stack([gumbel_noise((64, 64), k) for k in range(2)])
    guided = (torch.cat([empty, states]), torch.cat([empty_mask, mask]), TokenSamplingSettings(guidance=3.0))
    filtered = (states, mask, TokenSamplingSettings(guidance=1.0, temperature=0.7, top_k=10, top_p=0.9))
    for text, text_mask, settings in (guided, filtered):
        cached = pipe.sample_tokens(text, text_mask, gumbel, settings, use_cache=True)
        assert torch.equal(cached, pipe.sample_tokens(text, text_mask, gumbel, settings, use_cache=False))


def test_folder_generates_the_same_bytes_and_takes_its_settings(tiny_vq, tmp_path):
    model, _, _ = tiny_vq
    pipe = load_pipeline(model)
    assert pipe.family == "vq-transformer" and pipe.image_size == 32 and pipe.autoencoder is not None
    first = pipe(["She wears eyeglasses.", "He has a goatee."], seed=3, num_images_per_prompt=2, output_type="pt")
    again = pipe("He has a goatee.", seed=5, output_type="pt")  # image k of a call has seed + k
    assert first.shape == (4, 3, 32, 32) and torch.allclose(first[2], again[0], atol=1e-5)
    for run in ("a", "b"):
        argv = ["generate", "a hat", "--model", str(model), "--top-k", "5", "--temperature", "0.8"]
        assert main([*argv, "--out", str(tmp_path / run)]) == 0
    (a,), (b,) = (list((tmp_path / run).glob("*.png")) for run in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="top_p must be a number from 0.01 to 1"):
        pipe("a hat", settings=TokenSamplingSettings(top_p=0.0))


def test_a_folder_from_before_the_sentence_embedding_still_generates(tiny_vq, tmp_path):
    old = shutil.copytree(tiny_vq[0], tmp_path / "old")
    state = load_file(old / "transformer.safetensors")
    assert {"sentence.weight", "sentence.bias"} <= state.keys()  # new models take it (transformer.pooled_text)
    save_file({k: v for k, v in state.items() if not k.startswith("sentence.")}, old / "transformer.safetensors")
    pipe = load_pipeline(old)
    assert pipe.prior.sentence is None and pipe("a hat", output_type="pt").shape == (1, 3, 32, 32)


def test_resume_continues_exactly(tiny_vq, tmp_path, straight_and_resumed):
    _, vq, cache = tiny_vq
    config = load_config("configs/vq-tiny.yaml")
    training = dataclasses.replace(config.transformer_training, steps=12, checkpoint_every=6, sample_every=100)
    config.transformer_training = training
    straight, resumed = straight_and_resumed(lambda out: train_prior(config, cache, vq, out))
    assert (straight / "transformer.safetensors").read_bytes() == (resumed / "transformer.safetensors").read_bytes()
    assert sorted(p.name for p in (tmp_path / "straight" / "samples").iterdir()) == [
        "losses.png",
        "samples-0000012.png",
    ]
    config.transformer = dataclasses.replace(config.transformer, pooled_text=False)
    with pytest.raises(
        ValueError,
        match=r"step-0000012: its model does not fit this config; resume .* Unexpected key\(s\) .*sentence.weight",
    ):
        train_prior(config, cache, vq, tmp_path / "resumed")
    with pytest.raises(ValueError, match="must be 'vq' or 'dvae' for the vq-transformer family"):
        config.autoencoder.kind = "kl"
        train_prior(config, cache, vq, tmp_path / "kl")


def test_a_nan_loss_stops_with_the_last_checkpoint_named(tiny_vq, tmp_path, monkeypatch):
    _, vq, cache = tiny_vq
    real_loss = TokenTransformer.loss
    monkeypatch.setattr(TokenTransformer, "loss", lambda *args: real_loss(*args) * float("nan"))
    with pytest.raises(FloatingPointError, match="prior loss is nan in steps 1-"):
        train_prior(load_config("configs/vq-tiny.yaml"), cache, vq, tmp_path)
