import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

import t2i
from t2i.cascade.pipeline import CascadePipeline, upsampling_condition
from t2i.cascade.train import UpsamplerTask, low_resolution, train_upsampler
from t2i.config import load_config, validate
from t2i.diffusion.train import diffusion_loss, make_noise_scheduler
from t2i.diffusion.unet import build_unet


def test_the_upsamplers_loss_falls_on_one_batch(fit_one_batch):
    torch.manual_seed(0)
    config = load_config("configs/cascade-tiny.yaml")
    unet = build_unet(config.unet, 3, 32, 16, upsampler_levels=config.upsampler.max_noise_level + 1)
    schedule = make_noise_scheduler(config)
    x0 = torch.rand(4, 3, 32, 32) * 2 - 1
    levels = torch.tensor([0, 50, 100, 250])
    condition = upsampling_condition(low_resolution(x0, 16), 32, levels, torch.randn_like(x0), schedule)
    context = {"encoder_hidden_states": torch.randn(4, 5, 16)} | condition

    def loss_at(step):
        generator = torch.Generator().manual_seed(step % 2)  # two fixed draws of (ε, t)
        return diffusion_loss(unet, schedule, x0, context, generator=generator, min_snr_gamma=5.0)[0]

    losses = fit_one_batch(unet, loss_at, steps=40, lr=2e-3)
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4, losses


def test_the_condition_is_the_bicubic_image_noised_to_its_level():
    schedule = make_noise_scheduler(load_config("configs/cascade-tiny.yaml"))
    x0 = torch.rand(2, 3, 32, 32) * 2 - 1
    low = low_resolution(x0, 16)
    assert torch.allclose(low[:, :, 0, 0], x0[:, :, :2, :2].mean((2, 3)), atol=1e-6)  # each pixel a block's mean
    noise = torch.randn_like(x0)
    clean, noisy = upsampling_condition(low, 32, torch.tensor([0, 999]), noise, schedule)["low_resolution"]
    bicubic = torch.nn.functional.interpolate(low, size=(32, 32), mode="bicubic").clamp(-1, 1)
    assert torch.allclose(clean, bicubic[0], atol=0.05)  # level 0: √ᾱ_0 ≈ 1, √(1−ᾱ_0) = 0.01
    assert torch.allclose(noisy, noise[1], atol=0.02)  # level T−1: nearly pure noise


def test_the_augmentation_comes_from_the_steps_generator_and_resume_is_exact(
    tiny_cascade, tiny_faces, text_cache_dir, straight_and_resumed
):
    config = load_config("configs/cascade-tiny.yaml")
    config.diffusion_training = dataclasses.replace(config.diffusion_training, sample_every=100)
    base_dir = tiny_cascade / "base"
    straight, resumed = straight_and_resumed(
        lambda out: train_upsampler(config, tiny_faces, base_dir, out, text_cache_dir)
    )
    a = load_file(straight / "unet" / "diffusion_pytorch_model.safetensors")
    b = load_file(resumed / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (straight / "base" / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def test_the_pipeline_draws_the_same_bytes_for_the_same_seed(tiny_cascade):
    pipe = t2i.load_pipeline(tiny_cascade)
    assert isinstance(pipe, CascadePipeline) and pipe.image_size == 32 and pipe.base.image_size == 16
    steps = []
    first = pipe("She wears eyeglasses.", seed=3, output_type="pt", callback=lambda i, n: steps.append((i, n)))
    again = pipe("She wears eyeglasses.", seed=3, output_type="pt")
    other = pipe("She wears eyeglasses.", seed=4, output_type="pt")
    assert first.shape == (1, 3, 32, 32) and torch.equal(first, again) and not torch.equal(first, other)
    total = pipe.defaults.steps + pipe.defaults.upsampler_steps
    assert steps[-1] == (total, total) and len(steps) == total
    with pytest.raises(ValueError, match="noise_level must be at most 250"):
        pipe("a face", settings=dataclasses.replace(pipe.defaults, noise_level=400))
    assert (tiny_cascade.parent / "samples" / "samples-0000012.png").is_file()


def test_a_base_of_the_wrong_size_or_a_pooled_upsampler_is_refused(tiny_pixel, tiny_faces, tmp_path):
    config = load_config("configs/cascade-tiny.yaml")
    with pytest.raises(ValueError, match="pixel-diffusion model at upsampler.low_resolution = 16"):
        train_upsampler(config, tiny_faces, tiny_pixel, tmp_path)  # tiny_pixel draws 32×32
    config.unet = dataclasses.replace(config.unet, pooled_text=True)
    with pytest.raises(ValueError, match="unet.pooled_text must be false"):
        validate(config)
    config.unet = dataclasses.replace(config.unet, pooled_text=False)
    config.upsampler = dataclasses.replace(config.upsampler, low_resolution=12)
    with pytest.raises(ValueError, match="upsampler.low_resolution must divide"):
        validate(config)
    assert UpsamplerTask.name == "upsampler"


def test_the_upsampler_is_scored_against_bicubic_on_real_images(tiny_cascade, tiny_faces, tiny_classifier, tmp_path):
    from t2i.cli import main
    from t2i.eval.upsampler import evaluate_upsampler
    from t2i.families import trained_parameters

    argv = ["eval", "upsampler", "--model", str(tiny_cascade), "--data", str(tiny_faces), "--n", "4"]
    assert main([*argv, "--classifier", str(tiny_classifier[0]), "--out", str(tmp_path)]) == 0
    metrics = evaluate_upsampler(tiny_cascade, tiny_faces, n=4, classifier_dir=tiny_classifier[0], batch_size=3)
    written = json.loads((tmp_path / "metrics.json").read_text())  # image k's seed does not depend on the batch
    assert metrics["psnr_db_upsampler"] == pytest.approx(written["psnr_db_upsampler"], abs=1e-3)
    assert metrics["psnr_db_bicubic"] > 18 and metrics["psnr_db_bicubic"] > metrics["psnr_db_upsampler"]  # 12 steps
    assert 0 <= metrics["classifier_accuracy_upsampler"] <= 1 and (tmp_path / "upsampled.png").is_file()
    pipe = t2i.load_pipeline(tiny_cascade)
    unets = [pipe.base.unet, pipe.upsampler.unet]
    assert trained_parameters(pipe) == sum(p.numel() for unet in unets for p in unet.parameters())
