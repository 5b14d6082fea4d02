import pytest
import torch

from t2i.pipeline import SCHEDULERS, Text2ImagePipeline


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return Text2ImagePipeline.from_pretrained(tiny_model)


def test_from_pretrained_loads_every_part(pipe, tiny_model, tmp_path):
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.hidden_size == 384
    assert pipe.vae.config.scaling_factor != 1.0 and pipe.scheduler_config["beta_schedule"] == "scaled_linear"
    assert pipe.name == tiny_model.name and len(pipe.hash) == 10
    with pytest.raises(FileNotFoundError, match="missing unet/config.json, unet/diffusion_pytorch_model.safetensors"):
        Text2ImagePipeline.from_pretrained(tmp_path)


def test_same_seed_same_bytes_other_seed_other_image(pipe):
    a = pipe("This man has a goatee.", num_inference_steps=3, seed=1)[0]
    b = pipe("This man has a goatee.", num_inference_steps=3, seed=1)[0]
    c = pipe("This man has a goatee.", num_inference_steps=3, seed=2)[0]
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes() and a.size == (32, 32)


def test_guidance_one_is_the_conditional_pass_and_negative_prompts_matter(pipe):
    prompt = "She wears eyeglasses."
    cond_only = pipe(prompt, guidance_scale=1.0, num_inference_steps=3, output_type="latent")  # one pass
    through_cfg = pipe(
        prompt, guidance_scale=1.0 + 1e-7, num_inference_steps=3, output_type="latent"
    )  # ε_u + g(ε_c − ε_u)
    assert torch.allclose(cond_only, through_cfg, atol=1e-5)
    guided = pipe(prompt, guidance_scale=5.0, num_inference_steps=3, output_type="latent")
    negative = pipe(prompt, negative_prompt="glasses", guidance_scale=5.0, num_inference_steps=3, output_type="latent")
    assert (guided - cond_only).abs().max() > 1e-3 and (guided - negative).abs().max() > 1e-3


def test_image_k_of_a_batch_is_the_image_of_seed_plus_k(pipe):
    batch = pipe("a hat", seed=5, num_images_per_prompt=3, num_inference_steps=3, output_type="pt")
    alone = pipe("a hat", seed=7, num_inference_steps=3, output_type="pt")
    assert torch.allclose(batch[2], alone[0], atol=1e-4) and not torch.allclose(batch[1], alone[0], atol=1e-2)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_runs(pipe, name):
    latents = pipe("a hat", scheduler=name, num_inference_steps=2, output_type="latent", num_images_per_prompt=2)
    assert latents.shape == (2, 4, 8, 8) and torch.isfinite(latents).all()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"scheduler": "plms"}, "scheduler"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"prompt": 42}, "prompt"),
        ({"negative_prompt": ["a", "b"]}, "negative_prompt"),
        ({"num_images_per_prompt": 0}, "num_images_per_prompt"),
        ({"seed": -1}, "seed"),
        ({"guidance_scale": "high"}, "guidance_scale"),
        ({"output_type": "np"}, "output_type"),
    ],
)
def test_bad_parameters_name_the_parameter(pipe, kwargs, field):
    arguments = {"prompt": "a hat", "num_inference_steps": 2} | kwargs
    with pytest.raises(ValueError, match=field):
        pipe(**arguments)


def test_euler_equals_ddim_so_its_initial_sigma_is_taken_after_the_timesteps_are_set(tiny_model):
    # DDIM is Euler's method on the probability-flow ODE in σ; Euler's initial σ depends on set_timesteps
    pipe = Text2ImagePipeline.from_pretrained(tiny_model)
    ddim, euler = (pipe("a hat", scheduler=s, num_inference_steps=8, output_type="pt") for s in ("ddim", "euler"))
    assert (ddim - euler).abs().max() < 1e-3


def test_top_level_exports_are_the_pipeline_classes():
    import t2i
    from t2i.pipeline import SamplingSettings, Text2ImagePipeline

    assert t2i.Text2ImagePipeline is Text2ImagePipeline and t2i.SamplingSettings is SamplingSettings
    with pytest.raises(AttributeError):
        t2i.NoSuchThing  # noqa: B018
