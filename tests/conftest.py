import os
import socket
import subprocess
import sys
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_faces(tmp_path_factory):
    """120 synthetic 32x32 captioned faces in the MM-CelebA-HQ layout."""
    from t2i.data.synthetic import synthesize_dataset

    return synthesize_dataset(tmp_path_factory.mktemp("tiny_faces"), 120, 32, seed=0, workers=1)


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, tiny_faces):
    """A tiny KL autoencoder trained once (configs/tiny.yaml): (vae folder, run folder)."""
    from t2i.autoencoder.train import train_autoencoder
    from t2i.config import load_config

    out = tmp_path_factory.mktemp("tiny_ae")
    return train_autoencoder(load_config("configs/tiny.yaml"), tiny_faces, out), out


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, trained_tiny, tiny_faces):
    """The tiny dataset's latent cache."""
    from t2i.autoencoder.cache import cache_latents

    return cache_latents(trained_tiny[0], tiny_faces, tmp_path_factory.mktemp("tiny_cache"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, trained_tiny, tiny_cache):
    """A tiny text-to-image model folder (10 diffusion steps on the tiny cache)."""
    import dataclasses

    from t2i.config import load_config
    from t2i.diffusion.train import train_diffusion

    config = load_config("configs/tiny.yaml")
    config.diffusion_training = dataclasses.replace(config.diffusion_training, steps=10, sample_every=100)
    return train_diffusion(config, tiny_cache, trained_tiny[0], tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture(scope="session")
def tiny_model_states_only(tmp_path_factory, trained_tiny, tiny_cache):
    """The tiny model without the pooled sentence embedding (unet.pooled_text: false): the UNet of every model
    written before it existed, and the one diffusers' StableDiffusionPipeline can run."""
    import dataclasses

    from t2i.config import load_config
    from t2i.diffusion.train import train_diffusion

    config = load_config("configs/tiny.yaml")
    config.diffusion_training = dataclasses.replace(config.diffusion_training, steps=10, sample_every=100)
    config.unet = dataclasses.replace(config.unet, pooled_text=False)
    return train_diffusion(config, tiny_cache, trained_tiny[0], tmp_path_factory.mktemp("tiny_states_only"))


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory, tiny_model, tiny_cache, tiny_faces):
    """The tiny model distilled into a few-step student (configs/distill-tiny.yaml; the tiny cache reused)."""
    from t2i.config import load_distill_config
    from t2i.distill.train import distill

    config = load_distill_config("configs/distill-tiny.yaml")
    return distill(config, tiny_model, tiny_faces, tmp_path_factory.mktemp("tiny_student"), tiny_cache)


@pytest.fixture(scope="session")
def text_cache_dir(tmp_path_factory):
    """One caption-embedding cache folder shared by the tiny runs of every family (each caption encoded once)."""
    return tmp_path_factory.mktemp("text_cache")


@pytest.fixture(scope="session")
def tiny_gan(tmp_path_factory, tiny_faces, text_cache_dir):
    """A tiny GAN-CLS model folder (configs/gan-tiny.yaml, 30 steps)."""
    from t2i.config import load_config
    from t2i.gan.train import train_gan

    return train_gan(load_config("configs/gan-tiny.yaml"), tiny_faces, tmp_path_factory.mktemp("gan"), text_cache_dir)


@pytest.fixture(scope="session")
def tiny_pixel(tmp_path_factory, tiny_faces, text_cache_dir):
    """A tiny pixel-space DDPM model folder (configs/pixel-tiny.yaml, 30 steps)."""
    from t2i.config import load_config
    from t2i.pixel_diffusion.train import train_pixel_diffusion

    out = tmp_path_factory.mktemp("pixel")
    return train_pixel_diffusion(load_config("configs/pixel-tiny.yaml"), tiny_faces, out, text_cache_dir)


@pytest.fixture(scope="session")
def tiny_cascade(tmp_path_factory, tiny_faces, text_cache_dir):
    """A tiny cascade (`t2i train upsampler --config configs/cascade-tiny.yaml`, 12 steps, 16 → 32) over a 16×16
    base (configs/cascade-base-tiny.yaml, 10 steps): its model folder."""
    from t2i.cli import main
    from t2i.config import load_config
    from t2i.pixel_diffusion.train import train_pixel_diffusion

    base_config = load_config("configs/cascade-base-tiny.yaml")
    base = train_pixel_diffusion(base_config, tiny_faces, tmp_path_factory.mktemp("cascade_base"), text_cache_dir)
    out = tmp_path_factory.mktemp("cascade")
    argv = ["train", "upsampler", "--config", "configs/cascade-tiny.yaml", "--data", str(tiny_faces)]
    assert main([*argv, "--base", str(base), "--out", str(out), "--cache", str(text_cache_dir)]) == 0
    return out / "model"


@pytest.fixture(scope="session")
def tiny_vq(tmp_path_factory, tiny_faces, text_cache_dir):
    """A tiny VQ autoencoder, its token cache and a tiny token transformer (configs/vq-tiny.yaml):
    (model folder, vq folder, cache folder)."""
    from t2i.autoencoder.tokens import cache_tokens
    from t2i.autoencoder.train import train_autoencoder
    from t2i.config import load_config
    from t2i.training.token_prior import train_prior

    config = load_config("configs/vq-tiny.yaml")
    vq = train_autoencoder(config, tiny_faces, tmp_path_factory.mktemp("vq_ae"))
    cache = cache_tokens(vq, tiny_faces, text_cache_dir)
    return train_prior(config, cache, vq, tmp_path_factory.mktemp("vq_prior")), vq, cache


@pytest.fixture(scope="session")
def tiny_pixelcnn(tmp_path_factory, tiny_vq, tiny_faces):
    """A tiny gated PixelCNN over the tiny VQ autoencoder's tokens, trained by the command
    (`t2i train prior --config configs/pixelcnn-tiny.yaml`): its model folder."""
    from t2i.cli import main

    _, vq, cache = tiny_vq
    out = tmp_path_factory.mktemp("pixelcnn")
    argv = ["train", "prior", "--config", "configs/pixelcnn-tiny.yaml", "--data", str(tiny_faces)]
    assert main([*argv, "--autoencoder", str(vq), "--cache", str(cache), "--out", str(out)]) == 0
    return out / "model"


@pytest.fixture(scope="session")
def tiny_dalle(tmp_path_factory, tiny_faces, text_cache_dir):
    """DALL-E's parts at the tiny scale (configs/dalle-tiny.yaml): a discrete VAE, its token cache and a
    single-stream transformer: (model folder, dVAE folder, cache folder)."""
    from t2i.autoencoder.tokens import cache_tokens
    from t2i.autoencoder.train import train_autoencoder
    from t2i.config import load_config
    from t2i.training.token_prior import train_prior

    config = load_config("configs/dalle-tiny.yaml")
    dvae = train_autoencoder(config, tiny_faces, tmp_path_factory.mktemp("dvae"))
    cache = cache_tokens(dvae, tiny_faces, tmp_path_factory.mktemp("dvae_cache"))
    return train_prior(config, cache, dvae, tmp_path_factory.mktemp("dalle_prior")), dvae, cache


@pytest.fixture
def fit_one_batch():
    """fit_one_batch(model, loss_at, steps, lr, optimizer=Adam) -> the loss of each step of fitting one batch
    (`loss_at(step)` computes it)."""
    import torch

    def fit(model, loss_at, steps: int = 60, lr: float = 3e-3, optimizer=torch.optim.Adam) -> list[float]:
        opt, losses = optimizer(model.parameters(), lr=lr), []
        for step in range(steps):
            loss = loss_at(step)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    return fit


@pytest.fixture
def straight_and_resumed(tmp_path, monkeypatch):
    """straight_and_resumed(train) -> the model folders of `train(out)` run straight (tmp_path/straight) and run
    again killed right after its step-6 checkpoint, then resumed (tmp_path/resumed)."""
    from t2i.checkpoint import save_checkpoint

    def save_then_die(root, step, state, keep):
        save_checkpoint(root, step, state, keep)
        if step == 6:
            raise KeyboardInterrupt

    def run(train):
        straight = train(tmp_path / "straight")
        with monkeypatch.context() as patched:
            patched.setattr("t2i.training.loop.save_checkpoint", save_then_die)
            with pytest.raises(KeyboardInterrupt):
                train(tmp_path / "resumed")
        return straight, train(tmp_path / "resumed")

    return run


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory, tiny_faces):
    """An attribute classifier trained briefly on the tiny faces: (folder, info)."""
    from t2i.eval.classifier import ClassifierConfig, train_classifier

    out = tmp_path_factory.mktemp("tiny_classifier")
    config = ClassifierConfig(image_size=32, width=8, epochs=4, batch_size=16, lr=3e-3)
    return out, train_classifier(tiny_faces, out, config)


@pytest.fixture(scope="session")
def start_server():
    """start_server(model, *flags) -> (url, port, process): `t2i serve` in a real process, answering /healthz."""
    import httpx

    processes = []

    def start(model, *flags):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-m", "t2i.cli", "serve", "--model", str(model), "--port", str(port), *flags]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    return url, port, process
            except httpx.TransportError:
                time.sleep(0.1)
        process.kill()
        pytest.fail(f"server did not start: {process.stdout.read().decode()[-2000:]}")

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)
