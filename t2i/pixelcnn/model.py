"""VQ-VAE's prior: a gated PixelCNN over the grid of image tokens, conditioned on the caption's sentence embedding.

    input    the code grid t (B, h, w) -> embeddings (B, C, h, w)
    layer    vertical stack v: a (k//2 + 1) × k convolution over the rows above and the current row;
             horizontal stack x: a 1 × (k//2 + 1) convolution over the current row up to the current code,
             plus the vertical stack shifted down a row (so it sees only rows above: no blind spot);
             y = tanh(a + V_a s) ⊙ σ(b + V_b s)  for each stack, s = the caption's sentence embedding
             the horizontal stack is residual; the first layer ('A') excludes the current code itself
    output   logits over the K codes at every position: p(t_ij | t_<ij, y), raster order

(van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders"; the VQ-VAE paper trains it
on the 32×32 code grid.) Every convolution is causal by its padding, not by a masked kernel: the vertical stack
pads only above, the horizontal only to the left (one more in the first layer), so the same outputs come from
running on the first rows alone (sampling uses that).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2i.config import PixelCNNConfig
from t2i.text import sentence_embedding


def gate(x: torch.Tensor) -> torch.Tensor:
    """tanh(a) ⊙ σ(b) for the two halves of the channels."""
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    def __init__(self, width: int, kernel_size: int, text_dim: int, first: bool):
        super().__init__()
        self.half, self.first = kernel_size // 2, first
        self.vertical = nn.Conv2d(width, 2 * width, (self.half + 1, kernel_size))
        self.horizontal = nn.Conv2d(width, 2 * width, (1, self.half + 1))
        self.vertical_to_horizontal = nn.Conv2d(2 * width, 2 * width, 1)
        self.horizontal_out = nn.Conv2d(width, width, 1)
        self.condition = nn.Linear(text_dim, 4 * width)  # V s for both stacks' gates

    def vertical_stack(self, v: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The vertical convolution at each row (over rows i − k//2 … i) and the next layer's v."""
        v_pre = self.vertical(F.pad(v, (self.half, self.half, self.half, 0)))
        s_v, _ = self.condition(s)[:, :, None, None].chunk(2, 1)
        return v_pre, gate(v_pre + s_v)

    def horizontal_stack(self, x: torch.Tensor, v_above: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The next x from the codes j − k//2 … j of each row (< j in the first layer) and `v_above`, the vertical
        convolution of the row above."""
        x_pre = self.horizontal(F.pad(x, (self.half + self.first, 0, 0, 0)))[..., : x.shape[-1]]
        _, s_x = self.condition(s)[:, :, None, None].chunk(2, 1)
        x_new = self.horizontal_out(gate(x_pre + self.vertical_to_horizontal(v_above) + s_x))
        return x_new if self.first else x + x_new

    def forward(self, v: torch.Tensor, x: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_pre, v_next = self.vertical_stack(v, s)
        v_above = F.pad(v_pre, (0, 0, 1, 0))[:, :, : x.shape[-2]]  # shifted down a row: rows < i only
        return v_next, self.horizontal_stack(x, v_above, s)


class GatedPixelCNN(nn.Module):
    def __init__(self, config: PixelCNNConfig, num_codes: int, side: int, text_dim: int):
        super().__init__()
        self.num_codes, self.side, self.sequence_length = num_codes, side, side * side
        self.embedding = nn.Embedding(num_codes, config.width)
        self.layers = nn.ModuleList(
            GatedLayer(config.width, config.kernel_size, text_dim, first=i == 0) for i in range(config.layers + 1)
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(config.width, config.width, 1), nn.ReLU())
        self.out = nn.Conv2d(config.width, num_codes, 1)

    def forward(self, tokens: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, rows, w) for a code grid (B, rows, w) (rows ≤ h: its first rows) and s(y) (B, D)."""
        v = x = self.embedding(tokens).permute(0, 3, 1, 2)
        for layer in self.layers:
            v, x = layer(v, x, sentence)
        return self.out(self.head(x))

    def rows_above(self, tokens: torch.Tensor, sentence: torch.Tensor) -> list[torch.Tensor]:
        """For the row after `tokens` (B, rows, w): each layer's vertical convolution of the row above it (zeros for
        the first row), which is all that the horizontal stacks of that row read from the rows above."""
        batch, rows, w = tokens.shape
        if rows == 0:
            return [torch.zeros(batch, 2 * self.embedding.embedding_dim, 1, w, device=tokens.device)] * len(self.layers)
        v, above = self.embedding(tokens).permute(0, 3, 1, 2), []
        for layer in self.layers:
            v_pre, v = layer.vertical_stack(v, sentence)
            above.append(v_pre[:, :, -1:])
        return above

    def row_logits(self, row: torch.Tensor, above: list[torch.Tensor], sentence: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, 1, c) of a row's first c codes (B, 1, c) given `rows_above`: the full grid's logits there,
        for a 1 × c convolution per layer instead of the rows above again (fast PixelCNN sampling)."""
        x = self.embedding(row).permute(0, 3, 1, 2)
        for layer, v_above in zip(self.layers, above, strict=True):
            x = layer.horizontal_stack(x, v_above[..., : row.shape[-1]], sentence)
        return self.out(self.head(x))

    def loss(self, tokens: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of every code given the codes before it in raster order: −Σ_ij log p(t_ij | t_<ij, y) / N."""
        grid = tokens.view(len(tokens), self.side, self.side)
        logits = self(grid, sentence_embedding(text, text_mask))
        return F.cross_entropy(logits.float(), grid)
