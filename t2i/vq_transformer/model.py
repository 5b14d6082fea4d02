"""The prior over image tokens: a decoder-only transformer, in one of two conditionings.

    tokens   the autoencoder's code indices of an image in raster order, t_1 … t_N (16×16 = 256 at 64×64, f=4)

  stream (DALL-E): one sequence of the caption's tokens y_1 … y_L, then the image tokens
    input    [y_1, …, y_L, t_1, …, t_{N−1}]: its own embeddings for words (padding: a learned token per position)
             and codes, + learned positions of each part
    block    x += SelfAttention_causal(LN(x)) ; x += MLP(LN(x))
    output   p(y_{l+1} | y_≤l) at caption positions (words, tied to their embedding), p(t_i | y, t_<i) after
    loss     w · CE(caption) + (1 − w) · CE(image)   (DALL-E: w = 1/8)

  cross: the image tokens only, reading the frozen text encoder's states through cross-attention (as the UNet does)
    input    [BOS, t_1, …, t_{N−1}] + learned positions (+ W s(y), the caption's sentence embedding: pooled_text)
    block    x += SelfAttention_causal(LN(x)) ; x += CrossAttention(LN(x), text states) ; x += MLP(LN(x))
    output   p(t_i | t_<i, y)

A cache of each block's past keys and values (the caption's too, in the stream) makes sampling one token per step
cost one position's work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2i.config import TransformerConfig
from t2i.text import sentence_embedding


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, C) -> (B, heads, T, C / heads)"""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


class Block(nn.Module):
    def __init__(self, width: int, heads: int, text_dim: int | None):
        super().__init__()
        self.heads, self.cross = heads, text_dim is not None
        self.norm1, self.qkv, self.out1 = nn.LayerNorm(width), nn.Linear(width, 3 * width), nn.Linear(width, width)
        if self.cross:
            self.norm2, self.q, self.kv = nn.LayerNorm(width), nn.Linear(width, width), nn.Linear(text_dim, 2 * width)
            self.out2 = nn.Linear(width, width)
        self.norm3 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x, text=None, text_mask=None, cache: dict | None = None) -> torch.Tensor:
        # causal self-attention; with a cache, the new positions attend to every cached one and to themselves
        q, k, v = (_heads(t, self.heads) for t in self.qkv(self.norm1(x)).chunk(3, -1))
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        causal = q.shape[2] == k.shape[2] and q.shape[2] > 1  # a single new position needs no mask
        x = x + self.out1(F.scaled_dot_product_attention(q, k, v, is_causal=causal).transpose(1, 2).flatten(2))
        if not self.cross:
            return x + self.mlp(self.norm3(x))
        # cross-attention to the caption's token states (its keys and values computed once per sample)
        if cache is not None and "text_k" in cache:
            tk, tv = cache["text_k"], cache["text_v"]
        else:
            tk, tv = (_heads(t, self.heads) for t in self.kv(text).chunk(2, -1))
            if cache is not None:
                cache["text_k"], cache["text_v"] = tk, tv
        q = _heads(self.q(self.norm2(x)), self.heads)
        attend = text_mask[:, None, None, :].bool()  # padding is not attended to
        x = x + self.out2(F.scaled_dot_product_attention(q, tk, tv, attn_mask=attend).transpose(1, 2).flatten(2))
        return x + self.mlp(self.norm3(x))


class TokenTransformer(nn.Module):
    def __init__(
        self,
        config: TransformerConfig,
        num_codes: int,
        sequence_length: int,
        text_dim: int,
        text_vocabulary: int | None = None,
        text_length: int | None = None,
    ):
        """text_vocabulary, text_length: the stream's word ids and caption positions (the tokenizer's, max_tokens)."""
        super().__init__()
        self.num_codes, self.sequence_length = num_codes, sequence_length
        self.stream, self.text_loss_weight, width = (
            config.conditioning == "stream",
            config.text_loss_weight,
            config.width,
        )
        self.bos = num_codes  # cross: the start token's id, after the K codes
        self.token_embedding = nn.Embedding(num_codes + (not self.stream), width)
        self.position_embedding = nn.Parameter(torch.zeros(sequence_length, width))
        self.sentence = nn.Linear(text_dim, width) if config.pooled_text and not self.stream else None
        if self.sentence is not None:  # starts at zero: a new model starts as one without it
            nn.init.zeros_(self.sentence.weight)
            nn.init.zeros_(self.sentence.bias)
        if self.stream:  # the caption's words, a learned padding token per position, the caption's positions
            self.text_embedding = nn.Embedding(text_vocabulary, width)
            self.text_padding = nn.Parameter(torch.zeros(text_length, width))
            self.text_position_embedding = nn.Parameter(torch.zeros(text_length, width))
            nn.init.normal_(self.text_embedding.weight, std=0.02)
            nn.init.normal_(self.text_position_embedding, std=0.02)
        cross_dim = None if self.stream else text_dim
        self.blocks = nn.ModuleList(Block(width, config.heads, cross_dim) for _ in range(config.layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)
        nn.init.normal_(self.position_embedding, std=0.02)

    def start_tokens(self, batch: int, device) -> torch.Tensor:
        """What sampling starts from: BOS (cross), or nothing but the caption (stream)."""
        return torch.full((batch, 0 if self.stream else 1), self.bos, device=device)

    def embed_caption(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Stream: the word embeddings where the caption has words, position l's own padding token elsewhere."""
        words = torch.where(mask[..., None].bool(), self.text_embedding(ids), self.text_padding)
        return words + self.text_position_embedding

    def forward(self, tokens, text, text_mask, caches: list[dict] | None = None, start: int = 0) -> torch.Tensor:
        """Code logits (B, T, K) for input tokens (B, T) at image positions start … start + T − 1. In the stream,
        `text` is the caption's token ids; while the caption is not yet cached it leads the sequence, and the
        first logits are those of its last position (the first code's)."""
        x = self.token_embedding(tokens) + self.position_embedding[start : start + tokens.shape[1]]
        if self.sentence is not None:  # + W s(y) at every position, s(y) the same for paraphrases
            x = x + self.sentence(sentence_embedding(text, text_mask))[:, None]
        caption = self.stream and (caches is None or "k" not in caches[0])
        if caption:
            x = torch.cat([self.embed_caption(text, text_mask), x], 1)
        x = self.hidden(x, text, text_mask, caches)
        return self.head(x[:, text.shape[1] - 1 :] if caption else x)

    def hidden(self, x, text, text_mask, caches: list[dict] | None = None) -> torch.Tensor:
        """The blocks, then the final norm (the stream's blocks read no text states: the caption is in x)."""
        for number, block in enumerate(self.blocks):
            x = block(x, None if self.stream else text, text_mask, None if caches is None else caches[number])
        return self.norm(x)

    def loss(self, tokens, text, text_mask) -> torch.Tensor:
        """Next-token cross-entropy over the image tokens, −Σ_i log p(t_i | t_<i, y) / N (teacher forcing); in the
        stream, w · the caption's own (its words only) + (1 − w) · the image's."""
        inputs = torch.cat([self.start_tokens(len(tokens), tokens.device), tokens[:, :-1]], 1)
        if not self.stream:
            return F.cross_entropy(self(inputs, text, text_mask).flatten(0, 1).float(), tokens.flatten())
        image = self.token_embedding(inputs) + self.position_embedding[: inputs.shape[1]]  # t_j at position j − 1
        x = self.hidden(torch.cat([self.embed_caption(text, text_mask), image], 1), text, text_mask)
        length = text.shape[1]
        image_loss = F.cross_entropy(self.head(x[:, length - 1 :]).flatten(0, 1).float(), tokens.flatten())
        words = (x[:, : length - 1] @ self.text_embedding.weight.T).float()  # tied to the word embeddings
        per_word = F.cross_entropy(words.flatten(0, 1), text[:, 1:].flatten(), reduction="none")
        real = text_mask[:, 1:].flatten().float()
        caption = (per_word * real).sum() / real.sum().clamp(min=1)
        return self.text_loss_weight * caption + (1 - self.text_loss_weight) * image_loss
