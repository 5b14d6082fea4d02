import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from t2i.export import export_diffusers
from t2i.pipeline import Text2ImagePipeline


def test_diffusers_loads_the_export_and_generates_our_image(tiny_model_states_only, tmp_path):
    tiny_model = tiny_model_states_only  # diffusers' StableDiffusionPipeline passes no pooled embedding
    out = export_diffusers(tiny_model, tmp_path / "sd", scheduler="dpm++")
    assert {"unet", "vae", "text_encoder", "tokenizer", "scheduler", "model_index.json"} <= {
        p.name for p in out.iterdir()
    }
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt"))  # safetensors only

    theirs = StableDiffusionPipeline.from_pretrained(out)  # diffusers' own pipeline, not ours
    prompt, negative = "The person has high cheekbones, and pointy nose. She is wearing lipstick.", "a hat"
    kwargs = dict(num_inference_steps=6, guidance_scale=4.0)
    their_image = theirs(
        prompt, negative_prompt=negative, generator=torch.Generator().manual_seed(3), output_type="np", **kwargs
    ).images[0]
    ours = Text2ImagePipeline.from_pretrained(tiny_model)
    our_image = ours(prompt, negative_prompt=negative, seed=3, scheduler="dpm++", output_type="pt", **kwargs)[0]
    our_image = ((our_image.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    assert their_image.shape == our_image.shape == (32, 32, 3)
    assert np.abs(their_image * 255 - our_image * 255).max() <= 2


def test_fp16_export_halves_the_unet_and_generates_nearly_the_same(tiny_model, tmp_path):
    from t2i.export import export_t2i_fp16

    half = export_t2i_fp16(tiny_model, tmp_path / "half")
    name = "unet/diffusion_pytorch_model.safetensors"
    assert (half / name).stat().st_size < 0.55 * (tiny_model / name).stat().st_size
    a = Text2ImagePipeline.from_pretrained(tiny_model)("a hat", num_inference_steps=4, output_type="pt")
    b = Text2ImagePipeline.from_pretrained(half)("a hat", num_inference_steps=4, output_type="pt")
    assert (a - b).abs().max() < 0.05


def test_a_model_with_the_pooled_embedding_does_not_export_to_diffusers(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="never passes"):
        export_diffusers(tiny_model, tmp_path / "sd")
    assert not (tmp_path / "sd").exists()
