"""VQTransformerPipeline: a token pipeline (t2i.family_pipeline.TokenPipeline: the prompt and the empty one for
guidance, Gumbel noise from seed + k, the decoder) whose codes come from the transformer one at a time: it reads
the caption's tokens (stream) or the text encoder's states (cross), and a cache of the keys and values of
everything before holds its past, so each code costs one position's work; l = l_u + g (l_c − l_u), divided by
the temperature, cut to the top k / top p, then sampled."""

from __future__ import annotations

from dataclasses import replace

import torch

from t2i.autoencoder.tokens import grid_side, num_codes
from t2i.family_pipeline import TokenPipeline, next_token
from t2i.text import tokenize
from t2i.vq_transformer.model import TokenTransformer
from t2i.vq_transformer.settings import TokenSamplingSettings


class VQTransformerPipeline(TokenPipeline):
    family = "vq-transformer"
    weights = "transformer.safetensors"

    @staticmethod
    def build(config, autoencoder, text_encoder) -> TokenTransformer:
        """The transformer for an autoencoder: one output per code, one position per latent position (the stream:
        and one per caption token, with the text encoder's tokenizer's words)."""
        return TokenTransformer(
            config.transformer,
            num_codes=num_codes(autoencoder),
            sequence_length=grid_side(autoencoder) ** 2,
            text_dim=text_encoder.hidden_size,
            text_vocabulary=len(text_encoder.tokenizer),
            text_length=config.text.max_tokens,
        )

    @staticmethod
    def config_of_weights(config, state: dict):
        """Folders written before transformer.conditioning or transformer.pooled_text existed: cross-attention,
        with or without the sentence layer."""
        conditioning = "stream" if "text_embedding.weight" in state else "cross"
        config.transformer = replace(
            config.transformer, conditioning=conditioning, pooled_text="sentence.weight" in state
        )
        return config

    @property
    def reads_caption_ids(self) -> bool:
        return self.prior.stream

    def caption_inputs(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """What the transformer reads of captions: their token ids (stream) or the text encoder's states (cross),
        with the mask of real tokens."""
        if not self.prior.stream:
            return self.text_encoder.encode(captions)
        batch = tokenize(self.text_encoder.tokenizer, captions, self.text_encoder.max_tokens)
        return batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)

    @torch.no_grad()
    def sample_tokens(self, text, mask, gumbel, settings: TokenSamplingSettings, callback=None, use_cache=True):
        """Tokens (B, N) for the caption (B or 2B rows with guidance); gumbel: (B, N, K) noise, one row per image
        (argmax(l / T + g) with Gumbel noise g draws from softmax(l / T)). With the cache, each step feeds only
        what the cache does not hold yet."""
        model, batch = self.prior, gumbel.shape[0]
        guided = len(text) == 2 * batch
        caches = [{} for _ in model.blocks] if use_cache else None
        tokens = model.start_tokens(batch, self.device)  # BOS (cross) or nothing (stream), then the sampled codes
        start, fed = tokens.shape[1], 0  # fed: the tokens the cache holds
        for i in range(model.sequence_length):
            inputs = tokens[:, fed:] if use_cache else tokens
            inputs = torch.cat([inputs, inputs]) if guided else inputs
            logits = model(inputs, text, mask, caches, start=fed if use_cache else 0)[:, -1]
            fed = tokens.shape[1]
            tokens = torch.cat([tokens, next_token(logits, gumbel[:, i], settings)], 1)
            if callback is not None:
                callback(i + 1, model.sequence_length)
        return tokens[:, start:]
