"""The consistency-distillation math against diffusers' LCM (its scheduler and pipeline) and the noise schedule."""

import pytest
import torch
from diffusers import DDPMScheduler, LCMScheduler, UNet2DConditionModel
from diffusers.pipelines.latent_consistency_models.pipeline_latent_consistency_text2img import (
    LatentConsistencyModelPipeline,
)

from t2i.diffusion.unet import guidance_embedding
from t2i.distill.consistency import (
    boundary_scalings,
    consistency_output,
    ddim_step,
    pseudo_huber,
    solver_timesteps,
    student_unet,
    update_target,
)


def tiny_unet():
    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=16,
        norm_num_groups=8,
        attention_head_dim=8,
    )


def test_guidance_embedding_is_the_lcm_pipeline_s():
    w = torch.tensor([0.0, 1.0, 4.0, 7.5])
    expected = LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, w, embedding_dim=256)
    assert torch.allclose(guidance_embedding(w + 1, 256), expected, atol=1e-6)  # LCM's w is g − 1


def test_grid_and_boundary_scalings_are_lcm_scheduler_s():
    lcm = LCMScheduler(original_inference_steps=50)
    lcm.set_timesteps(50)
    assert solver_timesteps(1000, 50).tolist() == sorted(lcm.timesteps.tolist())
    t = torch.tensor([0, 19, 499, 999])
    c_skip, c_out = boundary_scalings(t)
    for k, step in enumerate(t.tolist()):
        skip, out = lcm.get_scalings_for_boundary_condition_discrete(step)
        assert c_skip[k].item() == pytest.approx(skip) and c_out[k].item() == pytest.approx(out)
    assert c_skip[0].item() == 1 and c_out[0].item() == 0  # f(z, 0) = z


def test_ddim_step_with_the_true_noise_lands_on_the_forward_process():
    schedule = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    z0, eps = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    t, s = torch.tensor([999, 500, 20]), torch.tensor([979, 480, 0])
    z_t = schedule.add_noise(z0, eps, t)
    assert torch.allclose(ddim_step(z_t, eps, t, s, schedule.alphas_cumprod), schedule.add_noise(z0, eps, s), atol=1e-5)
    # at t = 0 the consistency function is the identity; elsewhere it is (almost) x̂0
    assert torch.allclose(consistency_output(z_t, eps, torch.zeros(3, dtype=torch.long), schedule.alphas_cumprod), z_t)
    assert torch.allclose(consistency_output(z_t, eps, t, schedule.alphas_cumprod), z0, atol=1e-3)


def test_pseudo_huber_is_l2_near_zero_and_l1_far():
    a = torch.zeros(1000)
    assert pseudo_huber(a, a, 0.001).item() == 0
    assert pseudo_huber(a, a + 1e-5, 0.001).item() == pytest.approx((1e-5) ** 2 / (2 * 0.001), rel=1e-2)
    assert pseudo_huber(a, a + 10, 0.001).item() == pytest.approx(10 - 0.001, rel=1e-4)


def test_the_student_starts_as_the_teacher_and_its_guidance_input_is_live():
    teacher = tiny_unet()
    student = student_unet(teacher, 32)
    z, t, text = torch.randn(2, 4, 8, 8), torch.tensor([10, 900]), torch.randn(2, 5, 16)
    with torch.no_grad():
        expected = teacher(z, t, text).sample
        for g in (1.0, 7.0):
            w = guidance_embedding(torch.full((2,), g), 32)
            assert torch.allclose(student(z, t, text, timestep_cond=w).sample, expected, atol=1e-6)
        torch.nn.init.normal_(student.time_embedding.cond_proj.weight)  # what training does to it
        w = [guidance_embedding(torch.full((2,), g), 32) for g in (2.0, 8.0)]
        low, high = (student(z, t, text, timestep_cond=e).sample for e in w)
    assert (low - high).abs().max() > 1e-3


def test_update_target_moves_it_by_one_minus_decay():
    online, target = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    before = target.weight.detach().clone()
    update_target(target, online, 0.9)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * online.weight)
