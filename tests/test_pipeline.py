import pytest
import torch

from t2i.autoencoder.model import build_autoencoder
from t2i.config import load_config
from t2i.diffusion.train import make_noise_scheduler
from t2i.diffusion.unet import build_unet
from t2i.pipeline import SCHEDULERS, Text2ImagePipeline
from t2i.text import load_text_encoder


@pytest.fixture(scope="module")
def pipe():
    """An untrained tiny model: enough to check the sampling mechanics."""
    config = load_config("configs/tiny.yaml")
    torch.manual_seed(0)
    vae = build_autoencoder(config.autoencoder, 32)
    unet = build_unet(config.unet, 4, 8, 384)
    text = load_text_encoder("pretrained", None, config.text.max_tokens)
    return Text2ImagePipeline(unet, vae, text, make_noise_scheduler(config).config)


def test_same_seed_same_bytes_other_seed_other_image(pipe):
    a = pipe("This man has a goatee.", num_inference_steps=3, seed=1)[0]
    b = pipe("This man has a goatee.", num_inference_steps=3, seed=1)[0]
    c = pipe("This man has a goatee.", num_inference_steps=3, seed=2)[0]
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes() and a.size == (32, 32)


def test_guidance_one_is_the_conditional_pass_and_negative_prompts_matter(pipe):
    prompt = "She wears eyeglasses."
    cond_only = pipe(prompt, guidance_scale=1.0, num_inference_steps=3, output_type="latent")
    by_hand = pipe(prompt, guidance_scale=0.0, num_inference_steps=3, output_type="latent")  # no CFG below 1
    assert torch.equal(cond_only, by_hand)
    guided = pipe(prompt, guidance_scale=5.0, num_inference_steps=3, output_type="latent")
    negative = pipe(prompt, negative_prompt="glasses", guidance_scale=5.0, num_inference_steps=3, output_type="latent")
    assert not torch.equal(guided, cond_only) and not torch.equal(guided, negative)


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
    ],
)
def test_bad_parameters_name_the_parameter(pipe, kwargs, field):
    arguments = {"prompt": "a hat", "num_inference_steps": 2} | kwargs
    with pytest.raises(ValueError, match=field):
        pipe(**arguments)
