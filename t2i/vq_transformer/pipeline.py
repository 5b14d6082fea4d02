"""VQTransformerPipeline: prompt -> text states -> sample image tokens one by one -> VQ decoder -> image.

1. encode the prompt (and the negative or empty prompt for guidance)
2. for i = 1 … N: logits of t_i given t_<i (keys and values of t_<i cached), guided
   l = l_u + g (l_c − l_u), divided by the temperature, cut to the top k / top p, then sampled
3. decode: the codebook vector of each token, then the VQ decoder
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from t2i.config import load_config
from t2i.grid import to_pil
from t2i.model_folder import check_model_folder
from t2i.pipeline import check_request, load_text_encoder_of, model_hash, save_model_config
from t2i.settings import guide, uses_guidance
from t2i.vq_transformer.model import TokenTransformer
from t2i.vq_transformer.settings import TokenSamplingSettings
from t2i.vq_transformer.tokens import decode_tokens, load_vq

MODEL_FILES = ["transformer.safetensors", "t2i_config.yaml", "vqvae/config.json", "text_encoder/t2i_text.json"]


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


class VQTransformerPipeline:
    family = "vq-transformer"
    takes_negative_prompt = True  # the unconditional half of classifier-free guidance
    takes_edits = False  # no image-to-image, inpainting, word swap or attention maps
    takes_mixed_precision = False  # float32 throughout

    def __init__(self, transformer: TokenTransformer, vqvae, text_encoder, name="untitled", hash="", defaults=None):
        self.transformer, self.vqvae, self.text_encoder = transformer.eval(), vqvae.eval(), text_encoder
        self.name, self.hash = name, hash
        self.defaults: TokenSamplingSettings = defaults or TokenSamplingSettings()

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | torch.device = "cpu") -> VQTransformerPipeline:
        """Load a model folder written by `t2i train prior`: transformer.safetensors, vqvae/, text_encoder/."""
        model_dir = check_model_folder(model_dir, MODEL_FILES, "t2i vq-transformer model folder")
        config = load_config(model_dir / "t2i_config.yaml")
        vqvae, text_encoder = load_vq(model_dir / "vqvae"), load_text_encoder_of(model_dir)
        weights = model_dir / "transformer.safetensors"
        state = load_file(weights)  # folders written before transformer.pooled_text existed have no sentence layer
        config.transformer = replace(config.transformer, pooled_text="sentence.weight" in state)
        transformer = build_transformer(config, vqvae, text_encoder.hidden_size)
        transformer.load_state_dict(state)
        defaults = TokenSamplingSettings.of_model(model_dir)
        return cls(transformer, vqvae, text_encoder, model_dir.resolve().name, model_hash(weights), defaults).to(device)

    def save_pretrained(self, model_dir: str | Path, config, vq_dir: str | Path) -> Path:
        """Write a model folder: the transformer, the VQ autoencoder (copied from vq_dir), the text encoder's
        reference and the config."""
        model_dir = Path(model_dir)
        save_model_config(model_dir, config)
        save_file(self.transformer.state_dict(), model_dir / "transformer.safetensors")
        shutil.copytree(vq_dir, model_dir / "vqvae", dirs_exist_ok=True)
        return model_dir

    def to(self, device) -> VQTransformerPipeline:
        for module in (self.transformer, self.vqvae, self.text_encoder):
            module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self.transformer.head.weight.device

    @property
    def autoencoder(self):
        return self.vqvae

    @property
    def image_size(self) -> int:
        return self.vqvae.config.sample_size

    @torch.no_grad()
    def sample_tokens(self, text, mask, gumbel, settings: TokenSamplingSettings, callback=None, use_cache=True):
        """Tokens (B, N) for text states (B or 2B with guidance, L, D); gumbel: (B, N, K) noise, one row per image
        (argmax(l / T + g) with Gumbel noise g draws from softmax(l / T))."""
        model, batch = self.transformer, gumbel.shape[0]
        guided = len(text) == 2 * batch
        caches = [{} for _ in model.blocks] if use_cache else None
        tokens = torch.full((batch, 1), model.bos, device=self.device)  # BOS, then the sampled codes
        for i in range(model.sequence_length):
            inputs = tokens[:, -1:] if use_cache else tokens
            inputs = torch.cat([inputs, inputs]) if guided else inputs
            logits = model(inputs, text, mask, caches, start=i if use_cache else 0)[:, -1].float()
            if guided:  # l = l_u + g (l_c − l_u)
                logits = guide(*logits.chunk(2), settings.guidance)
            logits = filter_logits(logits / settings.temperature, settings.top_k, settings.top_p)
            tokens = torch.cat([tokens, (logits + gumbel[:, i]).argmax(-1, keepdim=True)], 1)
            if callback is not None:
                callback(i + 1, model.sequence_length)
        return tokens[:, 1:]

    @torch.no_grad()
    def __call__(
        self,
        prompt,
        negative_prompt=None,
        seed: int = 0,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
        callback=None,
        settings: TokenSamplingSettings | None = None,
    ):
        """Images for the prompts; image k's token noise comes from seed + k; `callback(i, N)` after each token."""
        prompts, negatives = check_request(
            prompt, negative_prompt, seed, num_images_per_prompt, output_type, ("pil", "pt")
        )
        settings = (settings or self.defaults).check()

        # 1. encode the prompt (and, first, the negative or empty one: the unconditional half of guidance)
        n = num_images_per_prompt
        states, mask = (t.repeat_interleave(n, 0) for t in self.text_encoder.encode(prompts))
        if uses_guidance(settings.guidance):
            unconditional, unconditional_mask = (t.repeat_interleave(n, 0) for t in self.text_encoder.encode(negatives))
            states, mask = torch.cat([unconditional, states]), torch.cat([unconditional_mask, mask])

        # 2. the tokens, one position at a time; image k's Gumbel noise from seed + k
        shape = (self.transformer.sequence_length, self.transformer.num_codes)
        gumbel = torch.stack([gumbel_noise(shape, seed + k) for k in range(len(prompts) * n)]).to(self.device)
        tokens = self.sample_tokens(states.to(self.device), mask.to(self.device), gumbel, settings, callback)

        # 3. decode: codebook vectors, then the VQ decoder
        images = decode_tokens(self.vqvae, tokens).clamp(-1, 1).float()
        return to_pil(images) if output_type == "pil" else images


def build_transformer(config, vqvae, text_dim: int) -> TokenTransformer:
    """The transformer for a VQ autoencoder: one output per code, one position per latent position."""
    side = vqvae.config.sample_size // 2 ** (len(vqvae.config.block_out_channels) - 1)
    return TokenTransformer(config.transformer, vqvae.config.num_vq_embeddings, side * side, text_dim)
