import dataclasses

import torch
from safetensors.torch import load_file

from t2i.autoencoder.codebook import DeadCodeRestarts
from t2i.autoencoder.model import build_autoencoder
from t2i.autoencoder.train import train_autoencoder


class OneProcess:
    num_processes = 1


def _vq(tiny_config):
    config = dataclasses.replace(tiny_config.autoencoder, kind="vq", latent_channels=3, num_vq_embeddings=16)
    return build_autoencoder(config, 32).train()


def test_dead_codes_move_onto_encoder_outputs_and_the_next_batch_uses_them(tiny_config):
    torch.manual_seed(0)
    model = _vq(tiny_config)
    codebook = model.quantize.embedding.weight
    with torch.no_grad():
        codebook[1:] = 100.0  # a collapsed book: every output is nearest to code 0
    restarts = DeadCodeRestarts(model, every=2, steps=6)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    model.quantize(model.encode(x).latents)
    assert restarts.codes_in_batch.item() == 1 and restarts.counts[0] == 4 * 8 * 8
    live = codebook[0].clone()
    assert restarts.after_step(0, OneProcess()) == 0 and (codebook[1:] == 100).all()  # not due yet
    assert restarts.after_step(1, OneProcess()) == 15  # every 2 steps: the 15 dead codes move
    assert torch.equal(codebook[0], live) and restarts.counts.sum() == 0
    assert restarts.after_step(5, OneProcess()) == 0  # none in the last `every` steps
    z = restarts.latents.permute(0, 2, 3, 1).reshape(-1, 3)
    assert all((z == code).all(1).any() for code in codebook[1:])  # each is one of the batch's outputs
    model.quantize(model.encode(x).latents)
    assert restarts.codes_in_batch.item() > 8


def test_restarts_are_logged_and_resume_exactly(tiny_faces, tiny_config, straight_and_resumed):
    training = dataclasses.replace(
        tiny_config.autoencoder_training,
        steps=12,
        disc_start=100,
        vq_restart_every=4,
        checkpoint_every=6,
        sample_every=100,
        scale_samples=16,
    )  # restarts after steps 4 and 8 (none in the last 4); the run dies after step 6, mid-window: its counts resume
    autoencoder = dataclasses.replace(tiny_config.autoencoder, kind="vq", latent_channels=3)
    config = dataclasses.replace(tiny_config, autoencoder=autoencoder, autoencoder_training=training)
    straight, resumed = straight_and_resumed(lambda out: train_autoencoder(config, tiny_faces, out))
    a = load_file(straight / "diffusion_pytorch_model.safetensors")
    b = load_file(resumed / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    from t2i.checkpoint import load_checkpoint

    history = load_checkpoint(straight.parent / "checkpoints" / "step-0000012")["history"]
    assert any(h.get("restarted", 0) > 0 for h in history) and all(1 <= h["codes"] <= 64 for h in history)
