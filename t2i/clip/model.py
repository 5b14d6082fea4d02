"""A CLIP-style dual encoder (Radford et al. 2021) as transformers' VisionTextDualEncoderModel: a ViT trained from
scratch on the images, the text encoder (the packaged MiniLM, or any local BERT-family folder) with only its top
layers trained (LiT, Zhai et al. 2022: a fully locked text tower works badly), linear projections to a shared
space and a learned temperature:

    u = W_i ViT(x) / ‖·‖,  v = W_t BERT(y) / ‖·‖,  logits = exp(s) · v uᵀ
    L = ½ (CE(logits, diag) + CE(logitsᵀ, diag))        symmetric InfoNCE over the batch

The folder it is saved as opens with `VisionTextDualEncoderModel.from_pretrained` and
`VisionTextDualEncoderProcessor.from_pretrained`, as any in the ecosystem.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModel,
    AutoTokenizer,
    VisionTextDualEncoderConfig,
    VisionTextDualEncoderModel,
    VisionTextDualEncoderProcessor,
    ViTConfig,
    ViTImageProcessorPil,
    ViTModel,
)

from t2i.config import ContrastiveConfig
from t2i.hub import local_folder
from t2i.text import default_text_encoder_path

MAX_LOGIT_SCALE = 100.0  # CLIP clips exp(s) at 100 so that the temperature cannot collapse


def build_clip(config: ContrastiveConfig) -> VisionTextDualEncoderModel:
    """An untrained image tower, the pretrained text tower with all but its top `text_trainable_layers` frozen."""
    c = config.clip
    vision = ViTModel(
        ViTConfig(
            image_size=config.data.image_size,
            patch_size=c.patch_size,
            hidden_size=c.width,
            num_hidden_layers=c.layers,
            num_attention_heads=c.heads,
            intermediate_size=4 * c.width,
        )
    )
    text = AutoModel.from_pretrained(text_tower_path(config), local_files_only=True, use_safetensors=True)
    both = VisionTextDualEncoderConfig.from_vision_text_configs(
        vision.config, text.config, projection_dim=c.projection_dim
    )
    model = VisionTextDualEncoderModel(config=both, vision_model=vision, text_model=text)
    text.requires_grad_(False)
    for layer in text.encoder.layer[len(text.encoder.layer) - c.text_trainable_layers :]:
        layer.requires_grad_(True)
    text.pooler.requires_grad_(True)
    return model


def text_tower_path(config: ContrastiveConfig) -> Path:
    return local_folder(config.text.path) if config.text.path else default_text_encoder_path()


def save_clip(model: VisionTextDualEncoderModel, config: ContrastiveConfig, folder: Path) -> None:
    """The model, the tokenizer and an image processor ([-1, 1] pixels at the training size): a folder that
    transformers' VisionTextDualEncoderModel and VisionTextDualEncoderProcessor load."""
    model.save_pretrained(folder, safe_serialization=True)
    size = config.data.image_size
    images = ViTImageProcessorPil(size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    tokenizer = AutoTokenizer.from_pretrained(text_tower_path(config), local_files_only=True)
    tokenizer.model_max_length = config.text.max_tokens
    VisionTextDualEncoderProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)


def clamp_temperature(model: VisionTextDualEncoderModel) -> None:
    """exp(s) ≤ 100 after every step (CLIP's clipping)."""
    with torch.no_grad():
        model.logit_scale.clamp_(max=torch.log(torch.tensor(MAX_LOGIT_SCALE)).item())
