"""`t2i export`: a t2i model folder -> a diffusers StableDiffusionPipeline folder, or a half-size t2i folder.

The exported folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/, model_index.json, no safety
checker) loads with `diffusers.StableDiffusionPipeline.from_pretrained(OUT)` and generates the same
images as `t2i generate`, because both sides pad prompts to the same length, give the text encoder
the attention mask (`use_attention_mask` in its config) and divide latents by the same scaling factor.
A model that adds the caption's sentence embedding to its time embedding (unet.pooled_text, the demo model)
also gets `pipeline.py` (t2i/export_pipeline.py: Stable Diffusion's pipeline passing that embedding as the UNet's
class_labels) and loads with `DiffusionPipeline.from_pretrained(OUT, custom_pipeline=OUT)`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

from t2i.diffusion.unet import sentence_token_count, takes_pooled_text
from t2i.families import model_family
from t2i.pipeline import Text2ImagePipeline, make_scheduler
from t2i.text import PretrainedTextEncoder


def require_families(model_dir: str | Path, families: list[str], what: str) -> None:
    family = model_family(model_dir)
    if family not in families:
        raise ValueError(f"{model_dir} is a {family} model; only {' and '.join(families)} models export to {what}")


def require_apart(model_dir: str | Path, out_dir: str | Path) -> None:
    """The export's folder is neither the model folder nor inside it (it would be copied into itself)."""
    model, out = Path(model_dir).resolve(), Path(out_dir).resolve()
    if out == model or out.is_relative_to(model):
        where = "the" if out == model else "inside the"
        raise ValueError(
            f"the output folder {out_dir} is {where} model folder {model_dir}: export to a folder of its own"
        )


def export_diffusers(model_dir: str | Path, out_dir: str | Path, scheduler: str = "dpm++") -> Path:
    """Write model_dir as a StableDiffusionPipeline folder whose scheduler is `scheduler`."""
    require_apart(model_dir, out_dir)
    require_families(model_dir, ["latent-diffusion"], "diffusers' StableDiffusionPipeline")
    pipe = Text2ImagePipeline.from_pretrained(model_dir)
    if not isinstance(pipe.vae, AutoencoderKL):
        raise ValueError("diffusers' StableDiffusionPipeline needs an AutoencoderKL; this model has a VQ autoencoder")
    if not isinstance(pipe.text_encoder, PretrainedTextEncoder):
        raise ValueError("only models with a Hugging Face text encoder export; this one was trained from scratch")
    if pipe.guidance_is_input:
        raise ValueError(
            "this model is a distilled student: its UNet takes the guidance scale as an input (timestep_cond), which "
            "diffusers' StableDiffusionPipeline never passes; `t2i export --format t2i-fp16` takes it"
        )
    if sentence_token_count(pipe.unet):
        raise ValueError(
            "this model reads the caption's sentence embedding as context tokens (unet.sentence_tokens), an input "
            "diffusers' StableDiffusionPipeline never passes, so it would draw other images; models trained without "
            "it export (`t2i export --format t2i-fp16` takes either)"
        )
    text_model, tokenizer = pipe.text_encoder.model, pipe.text_encoder.tokenizer
    text_model.config.use_attention_mask = True  # diffusers passes the mask only when this is set, as t2i does
    tokenizer.model_max_length = pipe.text_encoder.max_tokens  # diffusers pads prompts to this length
    sd = StableDiffusionPipeline(
        vae=pipe.vae,
        text_encoder=text_model,
        tokenizer=tokenizer,
        unet=pipe.unet,
        scheduler=make_scheduler(scheduler, pipe.scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    sd.save_pretrained(out_dir, safe_serialization=True)
    if takes_pooled_text(pipe.unet):  # its sentence embedding goes in through class_labels: a pipeline.py that does it
        shutil.copy(Path(__file__).with_name("export_pipeline.py"), Path(out_dir) / "pipeline.py")
        index = Path(out_dir) / "model_index.json"  # a plain StableDiffusionPipeline would draw other images
        index.write_text(json.dumps(json.loads(index.read_text()) | {"_class_name": "SentenceEmbeddingPipeline"}))
    return Path(out_dir)


def export_t2i_fp16(model_dir: str | Path, out_dir: str | Path) -> Path:
    """A copy of model_dir with the UNet stored in float16 (half the bytes; loaded back as float32)."""
    model_dir, out = Path(model_dir), Path(out_dir)
    require_apart(model_dir, out)
    require_families(model_dir, ["latent-diffusion", "pixel-diffusion"], "a float16 UNet copy")
    Text2ImagePipeline.from_pretrained(model_dir)  # refuse to copy something that does not load
    shutil.copytree(model_dir, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("unet"))
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet", use_safetensors=True)
    unet.to(torch.float16).save_pretrained(out / "unet", safe_serialization=True)
    return out
