"""The prior over image tokens: a decoder-only transformer that reads the caption through cross-attention.

    tokens   the VQ autoencoder's code indices of an image in raster order, t_1 … t_N (16×16 = 256 at 64×64, f=4)
    input    [BOS, t_1, …, t_{N−1}] + learned positions (+ W s(y), the caption's sentence embedding: pooled_text)
    block    x += SelfAttention_causal(LN(x)) ; x += CrossAttention(LN(x), text states) ; x += MLP(LN(x))
    output   logits over the K codes at every position:  p(t_i | t_<i, y)

DALL-E puts the caption's tokens in front of the image tokens in one sequence; here the caption is the frozen
text encoder's states, attended to by every block (as the diffusion UNet does), so the families compare on the
same text features and the sequence holds only image tokens. A cache of each block's past keys and values makes
sampling one token per step cost one position's work.
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
    def __init__(self, width: int, heads: int, text_dim: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.qkv, self.out1 = nn.LayerNorm(width), nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.norm2, self.q, self.kv = nn.LayerNorm(width), nn.Linear(width, width), nn.Linear(text_dim, 2 * width)
        self.out2 = nn.Linear(width, width)
        self.norm3 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x, text, text_mask, cache: dict | None = None) -> torch.Tensor:
        # causal self-attention; with a cache, the new positions attend to every cached one and to themselves
        q, k, v = (_heads(t, self.heads) for t in self.qkv(self.norm1(x)).chunk(3, -1))
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        causal = q.shape[2] == k.shape[2] and q.shape[2] > 1  # a single new position needs no mask
        x = x + self.out1(F.scaled_dot_product_attention(q, k, v, is_causal=causal).transpose(1, 2).flatten(2))
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
    def __init__(self, config: TransformerConfig, num_codes: int, sequence_length: int, text_dim: int):
        super().__init__()
        self.num_codes, self.sequence_length = num_codes, sequence_length
        self.bos = num_codes  # the start token's id, after the K codes
        self.token_embedding = nn.Embedding(num_codes + 1, config.width)
        self.position_embedding = nn.Parameter(torch.zeros(sequence_length, config.width))
        self.sentence = nn.Linear(text_dim, config.width) if config.pooled_text else None
        if self.sentence is not None:  # starts at zero: a new model starts as one without it
            nn.init.zeros_(self.sentence.weight)
            nn.init.zeros_(self.sentence.bias)
        self.blocks = nn.ModuleList(Block(config.width, config.heads, text_dim) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, num_codes)
        nn.init.normal_(self.position_embedding, std=0.02)

    def forward(self, tokens, text, text_mask, caches: list[dict] | None = None, start: int = 0) -> torch.Tensor:
        """Logits (B, T, K) for input tokens (B, T) at positions start … start + T − 1."""
        x = self.token_embedding(tokens) + self.position_embedding[start : start + tokens.shape[1]]
        if self.sentence is not None:  # + W s(y) at every position, s(y) the same for paraphrases
            x = x + self.sentence(sentence_embedding(text, text_mask))[:, None]
        for number, block in enumerate(self.blocks):
            x = block(x, text, text_mask, None if caches is None else caches[number])
        return self.head(self.norm(x))

    def loss(self, tokens, text, text_mask) -> torch.Tensor:
        """Next-token cross-entropy over the image tokens: −Σ_i log p(t_i | t_<i, y) / N (teacher forcing)."""
        inputs = torch.cat([torch.full_like(tokens[:, :1], self.bos), tokens[:, :-1]], 1)
        logits = self(inputs, text, text_mask)
        return F.cross_entropy(logits.flatten(0, 1).float(), tokens.flatten())
