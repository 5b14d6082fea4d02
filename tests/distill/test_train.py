"""`t2i distill` at the tiny scale: the student's folder, its loss, exact resume, clear errors."""

import dataclasses

import pytest
import torch

from t2i.config import DistillConfig, load_distill_config
from t2i.distill.train import ConsistencyTask, distill
from t2i.families import load_pipeline
from t2i.training.loop import start_run


def test_the_student_is_a_model_folder_that_draws_in_one_or_two_steps(tiny_student):
    pipe = load_pipeline(tiny_student)
    assert pipe.family == "latent-diffusion" and not pipe.takes_negative_prompt
    assert (pipe.defaults.steps, pipe.defaults.scheduler) == (2, "lcm")
    assert pipe.unet.config.time_cond_proj_dim == 256
    calls = []
    first = pipe("She wears eyeglasses.", seed=3, output_type="pt", callback=lambda i, n: calls.append(n))
    assert calls == [2, 2] and torch.equal(first, pipe("She wears eyeglasses.", seed=3, output_type="pt"))
    one = pipe("She wears eyeglasses.", seed=3, num_inference_steps=1, output_type="pt")
    assert one.shape == first.shape and not torch.equal(one, first)
    assert (tiny_student.parent / "samples" / "samples-0000006.png").is_file()
    assert (tiny_student / "distill_config.yaml").is_file()


def test_the_student_reads_its_guidance_and_refuses_a_negative_prompt(tiny_student):
    pipe = load_pipeline(tiny_student)
    low, high = (pipe("This man has a goatee.", seed=0, guidance_scale=g, output_type="pt") for g in (2.0, 8.0))
    assert (low - high).abs().max() > 1e-4  # trained: the w-embedding's projection is no longer zero
    with pytest.raises(ValueError, match="distilled student"):
        pipe("This man has a goatee.", negative_prompt="blurry")
    with pytest.raises(ValueError, match="at most the LCM grid's 10"):
        pipe("This man has a goatee.", num_inference_steps=11)


def test_the_consistency_loss_falls_on_one_batch(tiny_model, tiny_cache, tmp_path):
    config = load_distill_config("configs/distill-tiny.yaml")
    run = start_run(config, config.distillation, tmp_path)
    task = ConsistencyTask(config, run, tiny_model, _cache(tiny_cache, tiny_model))
    task.prepare(run, 0)
    optimizer = torch.optim.Adam(task.student.parameters(), lr=1e-4)
    z0, captions, _ = task.batch(0)
    losses = []
    for _ in range(20):
        loss = task.loss(z0, captions, torch.Generator().manual_seed(0))  # the same t, ε and g every step
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses  # 0.2 -> 0.03 on the tiny model


def _cache(cache_dir, model):
    from t2i.autoencoder.cache import LatentCache

    return LatentCache(cache_dir, model / "vae", 32)


def test_resume_is_exact_and_checks_the_teacher(
    tiny_model, tiny_model_states_only, tiny_cache, tiny_faces, straight_and_resumed
):
    config = load_distill_config("configs/distill-tiny.yaml")
    config.distillation = dataclasses.replace(config.distillation, steps=10, checkpoint_every=6, sample_every=100)
    straight, resumed = straight_and_resumed(lambda out: distill(config, tiny_model, tiny_faces, out, tiny_cache))
    weights = "unet/diffusion_pytorch_model.safetensors"
    assert (straight / weights).read_bytes() == (resumed / weights).read_bytes()
    config.distillation = dataclasses.replace(config.distillation, steps=12)
    with pytest.raises(ValueError, match="distils another teacher"):
        distill(config, tiny_model_states_only, tiny_faces, resumed.parent, tiny_cache)


def test_only_latent_diffusion_teachers_and_checked_settings(tiny_gan, tiny_faces, tmp_path):
    with pytest.raises(ValueError, match="is a gan model: t2i distill takes latent diffusion"):
        distill(DistillConfig(), tiny_gan, tiny_faces, tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text("distillation:\n  guidance_min: 6\n  guidance_max: 3\n")
    with pytest.raises(ValueError, match="distillation.guidance_max must be >= distillation.guidance_min"):
        load_distill_config(path)
