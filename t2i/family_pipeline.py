"""What the pipelines of the families that draw in one call share (GAN-CLS and the token priors).

    FamilyPipeline   the family protocol's `__call__`: check the request once, `draw` (the family's numbered
                     steps), PIL images or a tensor
    TokenPipeline    a prior over an autoencoder's image tokens: encode the prompt (and the negative or empty one,
                     for guidance), Gumbel noise from seed + k, the family's `sample_tokens`, decode

The latent and pixel diffusion families have their own pipeline (t2i.pipeline.Text2ImagePipeline), which also
edits.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from t2i.autoencoder.tokens import decode_tokens, load_token_autoencoder
from t2i.config import load_config
from t2i.grid import to_pil
from t2i.model_folder import check_model_folder
from t2i.pipeline import check_request, load_text_encoder_of, model_hash, save_model_config
from t2i.settings import Settings, guide, uses_guidance
from t2i.vq_transformer.settings import TokenSamplingSettings


class FamilyPipeline(ABC):
    """The call every family's pipeline takes; a subclass gives `defaults` and `draw`."""

    takes_edits = False  # no image-to-image, inpainting, word swap or attention maps
    guidance_is_input = False  # a distilled student's (t2i distill): one pass per step, g embedded
    takes_mixed_precision = False  # float32 throughout
    defaults: Settings

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        seed: int = 0,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
        callback=None,
        settings: Settings | None = None,
    ):
        """Images for the prompts; image k's randomness comes from seed + k; `callback(i, N)` as it goes."""
        prompts, negatives = check_request(
            prompt, negative_prompt, seed, num_images_per_prompt, output_type, ("pil", "pt")
        )
        if any(negatives) and not self.takes_negative_prompt:
            raise ValueError(f"a {self.family} model takes no negative prompt (it has no guidance to steer with)")
        settings = (settings or self.defaults).check()
        images = self.draw(prompts, negatives, seed, num_images_per_prompt, settings, callback).clamp(-1, 1).float()
        return to_pil(images) if output_type == "pil" else images

    @abstractmethod
    def draw(self, prompts, negatives, seed: int, n: int, settings, callback) -> torch.Tensor:
        """(len(prompts) · n, 3, H, W) images in [-1, 1], image k from seed + k."""


def gumbel_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """g = −log(−log u), u ~ U(0, 1) from `seed`: argmax(l + g) is a sample from softmax(l)."""
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).clamp(1e-10, 1 - 1e-7)
    return -torch.log(-torch.log(u))


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Logits with every code outside the top k, and outside the smallest set holding top_p of the probability,
    set to −inf (the most likely code always stays)."""
    if top_k:
        kth = logits.topk(min(top_k, logits.shape[-1])).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        ordered, order = logits.sort(-1, descending=True)
        probabilities = ordered.softmax(-1)
        outside = probabilities.cumsum(-1) - probabilities > top_p  # the mass before this code already reaches p
        logits = logits.scatter(-1, order, ordered.masked_fill(outside, float("-inf")))
    return logits


def next_token(logits: torch.Tensor, gumbel: torch.Tensor, settings) -> torch.Tensor:
    """One code per image (B, 1) from logits (B, K), or (2B, K) with guidance (unconditional rows first):
    l = l_u + g (l_c − l_u), divided by the temperature, cut to the top k / top p, then argmax(l + Gumbel noise)."""
    logits = logits.float()
    if len(logits) == 2 * len(gumbel):
        logits = guide(*logits.chunk(2), settings.guidance)
    logits = filter_logits(logits / settings.temperature, settings.top_k, settings.top_p)
    return (logits + gumbel).argmax(-1, keepdim=True)


class TokenPipeline(FamilyPipeline):
    """A prior over image tokens, its autoencoder (VQ or dVAE) and its text encoder. A subclass names its
    `weights` file and gives `build(config, autoencoder, text_encoder)` and `sample_tokens`."""

    takes_negative_prompt = True  # the unconditional half of classifier-free guidance
    weights: str  # the prior's file in the model folder
    settings_class = TokenSamplingSettings
    reads_caption_ids = False  # the prior reads the text encoder's states (True: the caption's token ids)

    def __init__(self, prior, autoencoder, text_encoder, name="untitled", hash="", defaults=None):
        self.prior, self.vqvae, self.text_encoder = prior.eval(), autoencoder.eval(), text_encoder
        self.name, self.hash = name, hash
        self.defaults = defaults or self.settings_class()

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | torch.device = "cpu"):
        """Load a model folder written by `t2i train prior`: the prior's weights, vqvae/, text_encoder/."""
        files = [cls.weights, "t2i_config.yaml", "vqvae/config.json", "text_encoder/t2i_text.json"]
        model_dir = check_model_folder(model_dir, files, f"t2i {cls.family} model folder")
        config = load_config(model_dir / "t2i_config.yaml")
        autoencoder, text_encoder = load_token_autoencoder(model_dir / "vqvae"), load_text_encoder_of(model_dir)
        state = load_file(model_dir / cls.weights)
        prior = cls.build(cls.config_of_weights(config, state), autoencoder, text_encoder)
        prior.load_state_dict(state)
        defaults = cls.settings_class.of_model(model_dir)
        name, digest = model_dir.resolve().name, model_hash(model_dir / cls.weights)
        return cls(prior, autoencoder, text_encoder, name, digest, defaults).to(device)

    @staticmethod
    def config_of_weights(config, state: dict):
        """The config as the saved weights were trained (folders written before a field existed)."""
        return config

    def save_pretrained(self, model_dir: str | Path, config, autoencoder_dir: str | Path) -> Path:
        """Write a model folder: the prior, the autoencoder (copied), the text encoder's reference, the config."""
        model_dir = Path(model_dir)
        save_model_config(model_dir, config)
        save_file(self.prior.state_dict(), model_dir / self.weights)
        shutil.copytree(autoencoder_dir, model_dir / "vqvae", dirs_exist_ok=True)
        return model_dir

    def to(self, device):
        for module in (self.prior, self.vqvae, self.text_encoder):
            module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.prior.parameters()).device

    @property
    def autoencoder(self):
        return self.vqvae

    @property
    def image_size(self) -> int:
        return self.vqvae.config.sample_size

    def caption_inputs(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """What the prior reads of captions, and the mask of real tokens: the text encoder's states."""
        return self.text_encoder.encode(captions)

    def encode_prompts(self, prompts: list[str], negatives: list[str], n: int, guidance: float) -> tuple:
        """The prompts' `caption_inputs`, n rows a prompt; with guidance the negative (or empty) prompts' rows
        first: the unconditional half."""
        text, mask = (t.repeat_interleave(n, 0) for t in self.caption_inputs(prompts))
        if uses_guidance(guidance):
            unconditional, unconditional_mask = (t.repeat_interleave(n, 0) for t in self.caption_inputs(negatives))
            text, mask = torch.cat([unconditional, text]), torch.cat([unconditional_mask, mask])
        return text.to(self.device), mask.to(self.device)

    def draw(self, prompts, negatives, seed: int, n: int, settings, callback) -> torch.Tensor:
        # 1. encode the prompt (and, first, the negative or empty one: the unconditional half of guidance)
        text = self.encode_prompts(prompts, negatives, n, settings.guidance)

        # 2. the tokens, one position at a time; image k's Gumbel noise from seed + k
        shape = (self.prior.sequence_length, self.prior.num_codes)
        gumbel = torch.stack([gumbel_noise(shape, seed + k) for k in range(len(prompts) * n)]).to(self.device)
        tokens = self.sample_tokens(*text, gumbel, settings, callback)

        # 3. decode: each token's codebook vector, then the autoencoder's decoder
        return decode_tokens(self.vqvae, tokens)

    @abstractmethod
    def sample_tokens(self, text, mask, gumbel, settings, callback=None) -> torch.Tensor:
        """Tokens (B, N) for the caption (B or 2B rows with guidance); gumbel: (B, N, K) noise, a row per image."""
