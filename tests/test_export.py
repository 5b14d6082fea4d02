from pathlib import Path

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


def test_a_distilled_student_exports_in_float16_and_not_to_stable_diffusion(tiny_student, tmp_path):
    from t2i.export import export_t2i_fp16

    with pytest.raises(ValueError, match="distilled student"):
        export_diffusers(tiny_student, tmp_path / "sd")
    half = Text2ImagePipeline.from_pretrained(export_t2i_fp16(tiny_student, tmp_path / "half"))
    assert half.defaults.scheduler == "lcm" and half.unet.config.time_cond_proj_dim == 256
    a = Text2ImagePipeline.from_pretrained(tiny_student)("a hat", output_type="pt")
    assert (a - half("a hat", output_type="pt")).abs().max() < 0.05


@pytest.mark.parametrize("model", ["tiny", "demo"])
def test_a_model_with_the_sentence_embedding_exports_with_its_pipeline_and_draws_our_image(model, tiny_model, tmp_path):
    from diffusers import DiffusionPipeline

    from t2i.diffusion.unet import takes_pooled_text

    folder = tiny_model if model == "tiny" else Path(__file__).resolve().parent.parent / "weights" / "demo"
    ours = Text2ImagePipeline.from_pretrained(folder)
    assert takes_pooled_text(ours.unet)
    out = export_diffusers(folder, tmp_path / "sd")
    assert (out / "pipeline.py").is_file()
    with pytest.raises(Exception, match="custom code in pipeline.py"):  # never run without being asked
        DiffusionPipeline.from_pretrained(out, custom_pipeline=str(out))
    theirs = DiffusionPipeline.from_pretrained(out, custom_pipeline=str(out), trust_remote_code=True)
    assert type(theirs).__name__ == "SentenceEmbeddingPipeline"
    prompt, negative = "This man has gray hair and a goatee. He wears eyeglasses.", "a hat"
    kwargs = dict(num_inference_steps=5, guidance_scale=5.0)
    generator = torch.Generator().manual_seed(3)
    their_image = theirs(prompt, negative_prompt=negative, generator=generator, output_type="np", **kwargs).images[0]
    ours.mixed_precision = "no"  # diffusers runs fp32
    our_image = ours(prompt, negative_prompt=negative, seed=3, scheduler="dpm++", output_type="pt", **kwargs)[0]
    our_image = ((our_image.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    assert np.abs(their_image * 255 - our_image * 255).max() <= 1
