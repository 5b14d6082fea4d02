"""GANPipeline: prompt -> sentence embedding h -> generator G(z, h) -> image, in one forward pass."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from t2i.config import load_config
from t2i.family_pipeline import FamilyPipeline
from t2i.gan.model import Generator
from t2i.gan.settings import GANSettings
from t2i.model_folder import check_model_folder
from t2i.pipeline import load_text_encoder_of, model_hash
from t2i.text import sentence_embedding

MODEL_FILES = ["generator.safetensors", "t2i_config.yaml", "text_encoder/t2i_text.json"]  # what `t2i train gan` writes


class GANPipeline(FamilyPipeline):
    family = "gan"
    autoencoder = None
    takes_negative_prompt = False  # no guidance to steer with

    def __init__(self, generator: Generator, text_encoder, name: str = "untitled", hash: str = "", defaults=None):
        self.generator, self.text_encoder = generator.eval(), text_encoder
        self.name, self.hash = name, hash
        self.defaults: GANSettings = defaults or GANSettings()

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | torch.device = "cpu") -> GANPipeline:
        """Load a model folder written by `t2i train gan`: generator.safetensors, t2i_config.yaml, text_encoder/."""
        model_dir = check_model_folder(model_dir, MODEL_FILES, "t2i GAN model folder")
        config = load_config(model_dir / "t2i_config.yaml")
        text_encoder = load_text_encoder_of(model_dir)
        generator = Generator(config.gan, config.data.image_size, text_encoder.hidden_size)
        generator.load_state_dict(load_file(model_dir / "generator.safetensors"))
        pipe = cls(
            generator,
            text_encoder,
            model_dir.resolve().name,
            model_hash(model_dir / "generator.safetensors"),
            GANSettings.of_model(model_dir),
        )
        return pipe.to(device)

    def to(self, device: str | torch.device) -> GANPipeline:
        self.generator.to(device)
        self.text_encoder.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def image_size(self) -> int:
        return self.generator.image_size

    def draw(self, prompts, negatives, seed: int, n: int, settings: GANSettings, callback) -> torch.Tensor:
        """Images for the prompts (image k: z from seed + k, scaled by ψ); `callback(1, 1)` when done."""
        # 1. encode the prompt: h = the sentence embedding
        states, mask = self.text_encoder.encode(prompts)
        h = sentence_embedding(states, mask).repeat_interleave(n, 0).to(self.device)

        # 2. noise: z_k ~ N(0, ψ² I) from seed + k
        z = torch.stack(
            [
                torch.randn(self.generator.noise_dim, generator=torch.Generator().manual_seed(seed + k))
                for k in range(len(prompts) * n)
            ]
        )

        # 3. one forward pass: x = G(z, h)
        images = self.generator(settings.truncation * z.to(self.device), h)
        if callback is not None:
            callback(1, 1)
        return images
