import dataclasses

import pytest
import torch

from t2i.checkpoint import save_checkpoint
from t2i.cli import main
from t2i.config import load_config
from t2i.gan.model import Discriminator, Generator, init_weights
from t2i.gan.pipeline import GANPipeline, GANSettings
from t2i.gan.train import discriminator_loss, generator_loss, train_gan


def test_each_loss_falls_on_one_batch():
    config = load_config("configs/gan-tiny.yaml").gan
    torch.manual_seed(0)
    generator, discriminator = Generator(config, 32, 24), Discriminator(config, 32, 24)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    x, h = torch.rand(8, 3, 32, 32) * 2 - 1, torch.nn.functional.normalize(torch.randn(8, 24), dim=-1)
    z, z_int = torch.randn(8, config.noise_dim), torch.randn(8, config.noise_dim)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(30):  # the matching-aware discriminator alone: tells real/right from wrong text and fakes
        loss = discriminator_loss(discriminator, x, h, h.roll(1, 0), generator(z, h))
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(30):  # then the generator alone, GAN-INT term included, against that discriminator
        loss = generator_loss(generator, discriminator, h, h.roll(1, 0), generator(z, h), z_int, 1.0)
        opt_g.zero_grad()
        loss.backward(inputs=list(generator.parameters()))
        opt_g.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_trained_folder_generates_the_same_bytes_and_says_its_family(tiny_gan, tmp_path):
    assert sorted(p.name for p in (tiny_gan.parent / "samples").iterdir()) == ["losses.png", "samples-0000030.png"]
    pipe = GANPipeline.from_pretrained(tiny_gan)
    assert pipe.family == "gan" and pipe.image_size == 32 and pipe.defaults == GANSettings()
    first = pipe(["She wears eyeglasses.", "He has a goatee."], seed=3, num_images_per_prompt=2, output_type="pt")
    again = pipe("He has a goatee.", seed=5, output_type="pt")  # image k of a call has seed + k
    assert first.shape == (4, 3, 32, 32) and torch.allclose(first[2], again[0], atol=1e-5)
    still = GANSettings(truncation=0.0)  # ψ = 0: z = 0 whatever the seed, the text alone decides
    narrow = pipe("He has a goatee.", seed=5, output_type="pt", settings=still)
    assert not torch.equal(narrow, again) and torch.equal(
        narrow, pipe("He has a goatee.", seed=9, output_type="pt", settings=still)
    )
    with pytest.raises(ValueError, match="negative prompt"):
        pipe("a hat", negative_prompt="glasses")
    with pytest.raises(ValueError, match="truncation must be"):
        pipe("a hat", settings=GANSettings(truncation=5.0))
    for run in ("a", "b"):
        assert (
            main(["generate", "a hat", "--model", str(tiny_gan), "--truncation", "0.7", "--out", str(tmp_path / run)])
            == 0
        )
    (a,), (b,) = (list((tmp_path / run).glob("*.png")) for run in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()
    assert main(["generate", "a hat", "--model", str(tiny_gan), "--steps", "3", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("stabilised", [False, True])
def test_resume_continues_exactly(stabilised, tiny_faces, text_cache_dir, tmp_path, monkeypatch):
    config = load_config("configs/gan-tiny.yaml")
    config.gan_training = dataclasses.replace(config.gan_training, steps=12, checkpoint_every=6, sample_every=100)
    if stabilised:  # spectral norm's power-iteration vectors, the smoothed labels and D's own LR resume as well
        config.gan = dataclasses.replace(config.gan, spectral_norm=True)
        config.gan_training = dataclasses.replace(config.gan_training, label_smoothing=0.1, discriminator_lr=4e-4)
    straight = train_gan(config, tiny_faces, tmp_path / "straight", text_cache_dir)

    def save_then_die(root, step, state, keep):  # the checkpoint at step 6 is written, then the run dies
        save_checkpoint(root, step, state, keep)
        if step == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr("t2i.training.loop.save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_gan(config, tiny_faces, tmp_path / "resumed", text_cache_dir)
    monkeypatch.undo()
    resumed = train_gan(config, tiny_faces, tmp_path / "resumed", text_cache_dir)
    assert (straight / "generator.safetensors").read_bytes() == (resumed / "generator.safetensors").read_bytes()
    if stabilised:
        from t2i.checkpoint import load_checkpoint

        state = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "step-0000012")
        assert state["opt_d"]["param_groups"][0]["lr"] == 4e-4 and state["opt_g"]["param_groups"][0]["lr"] == 2e-4
        assert any(k.endswith("parametrizations.weight.original") for k in state["discriminator"])


def test_label_smoothing_moves_the_real_target():
    x, h = torch.zeros(2, 3, 16, 16), torch.zeros(2, 6)

    def judge(images, text):  # logit 2 for every pair: L = BCE(2, target) + 0.5 (BCE(2, 0) + BCE(2, 0))
        return torch.full((len(images),), 2.0)

    plain, smoothed = discriminator_loss(judge, x, h, h, x), discriminator_loss(judge, x, h, h, x, 0.1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    target = torch.tensor([2.0])
    assert smoothed - plain == pytest.approx((bce(target, torch.tensor([0.9])) - bce(target, torch.ones(1))).item())


def test_bad_input_is_a_clear_error(tiny_faces, text_cache_dir, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="latent-diffusion family: train it with `t2i train autoencoder"):
        train_gan(load_config("configs/tiny.yaml"), tiny_faces, tmp_path / "wrong", text_cache_dir)
    config = load_config("configs/gan-tiny.yaml")
    config.data.image_size = 48
    with pytest.raises(ValueError, match="power of 2"):
        train_gan(config, tiny_faces, tmp_path / "size", text_cache_dir)
    monkeypatch.setattr("t2i.gan.train.discriminator_loss", lambda *args: discriminator_loss(*args) * float("nan"))
    with pytest.raises(FloatingPointError, match="gan loss_d is nan in steps 1-"):
        train_gan(load_config("configs/gan-tiny.yaml"), tiny_faces, tmp_path / "nan", text_cache_dir)
