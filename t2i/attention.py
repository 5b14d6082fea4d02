"""Cross-attention made visible and steerable: per-token attention maps (as DAAM draws them) and prompt-to-prompt's
word swap, through a diffusers attention processor on the UNet's cross-attention layers.

    A = softmax(Q Kᵀ / √d)     Q from the image features, K from the prompt's T token states; per pixel, sums to 1
    maps: A of the conditional half, averaged over heads, layers (each upsampled to the latent grid) and steps
    word swap: for the first steps, the edited prompt's A is the source prompt's, its tokens aligned to the source's
               (and, for fewer steps, its self-attention too: prompt-to-prompt's way of keeping the layout)
    local blend: after each step, z_edit = z_source + m ⊙ (z_edit − z_source), m = 1 where the swapped words'
               maps so far lie in the top (1 − BLEND_THRESHOLD) of their range (prompt-to-prompt's LocalBlend)
"""

from __future__ import annotations

import difflib
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

BLEND_THRESHOLD = 0.45  # a local blend's mask: where the swapped words' attention is above this share of its range
# (prompt-to-prompt takes a share of the maximum; the maps of a small UNet are too flat for that: 99% of the image).
# 0.45: on the demo model, the new colour in 86% of hair-colour swaps and 92% of the rest kept (docs/editing.md)


@dataclass
class AttentionMaps:
    """Where each token of a prompt looked: `maps[k]` (H × W) is the attention of `tokens[k]`."""

    tokens: list[str]  # the prompt's word pieces, without the tokenizer's special tokens and padding
    maps: torch.Tensor  # (len(tokens), H, W)


def token_alignment(source_ids: list[int], target_ids: list[int]) -> torch.Tensor:
    """(T_target, T_source): row k says which source tokens target token k takes its attention from; tokens the
    two prompts share map one to one, the tokens of a replaced word take the mean of the word they replace, and
    a word only the target has gets none (a word swap replaces words)."""
    mapping = torch.zeros(len(target_ids), len(source_ids))
    matcher = difflib.SequenceMatcher(a=source_ids, b=target_ids, autojunk=False)
    for _, i1, i2, j1, j2 in matcher.get_opcodes():  # equal, replaced, deleted or inserted spans
        if i2 - i1 == j2 - j1:
            mapping[range(j1, j2), range(i1, i2)] = 1.0
        elif i2 > i1:
            mapping[j1:j2, i1:i2] = 1.0 / (i2 - i1)
    return mapping


def swapped_tokens(source_ids: list[int], target_ids: list[int]) -> tuple[list[int], list[int]]:
    """The positions of the tokens a word swap changes: in the source, and in the target."""
    matcher = difflib.SequenceMatcher(a=source_ids, b=target_ids, autojunk=False)
    spans = [span for tag, *span in matcher.get_opcodes() if tag != "equal"]
    return [i for i1, i2, _, _ in spans for i in range(i1, i2)], [j for _, _, j1, j2 in spans for j in range(j1, j2)]


class AttentionControl:
    """What the attention processors do with A at each call: add the conditional half of the cross-attention to
    the maps, and for the first steps give the edited images the source images' A (a batch laid out
    [source images; edited images] in each half)."""

    def __init__(
        self,
        images: int,
        guided: bool,
        size: int,
        swap: torch.Tensor | None = None,
        swap_steps: int = 0,
        self_steps: int = 0,
        record: bool = True,
    ):
        """`images` per half of the UNet's batch; `swap`: one token_alignment per edited image (pairs, T, T);
        the edited images take the source's cross-attention for `swap_steps` steps, its self-attention (the
        layout) for `self_steps`; `record`: keep the maps."""
        self.images, self.guided, self.size, self.record = images, guided, size, record
        self.swap, self.swap_steps, self.self_steps = swap, swap_steps, self_steps
        self.step, self.sum, self.calls = 0, None, 0

    def __call__(self, probs: torch.Tensor, heads: int, cross: bool) -> torch.Tensor:
        halves = probs.view(2 if self.guided else 1, self.images, heads, *probs.shape[1:])  # (half, B, heads, Q, K)
        if self.swap is not None and self.step < (self.swap_steps if cross else self.self_steps):
            source = halves[-1][: len(self.swap)]
            injected = torch.einsum("bhqs,bts->bhqt", source, self.swap.to(probs)) if cross else source
            halves = torch.cat([halves[:-1], torch.cat([source, injected])[None]])
        if cross and self.record:  # the maps: the conditional half, heads averaged, on the latent grid
            cond = halves[-1]
            side = int(cond.shape[2] ** 0.5)
            grid = cond.float().mean(1).transpose(1, 2).reshape(self.images, -1, side, side)  # (B, T, h, w)
            grid = F.interpolate(grid, size=(self.size, self.size), mode="bilinear", align_corners=False)
            self.sum = grid if self.sum is None else self.sum + grid
            self.calls += 1
        return halves.reshape(probs.shape)

    def blend_mask(self, words: torch.Tensor) -> torch.Tensor:
        """(edited images, 1, h, w): where the swapped words attend, in the source or in the edit, in the maps so
        far; `words` (all images, T) weighs each image's tokens (1 on its prompt's swapped words)."""
        maps = torch.einsum("bthw,bt->bhw", self.sum / self.calls, words.to(self.sum))[:, None]
        maps = F.max_pool2d(maps, 3, stride=1, padding=1)  # a little wider than the words' own pixels
        low, high = maps.amin((2, 3), keepdim=True), maps.amax((2, 3), keepdim=True)
        mask = (maps - low > BLEND_THRESHOLD * (high - low)).float()
        source, edited = mask.chunk(2)
        return torch.maximum(source, edited)

    def maps(self, size: int) -> torch.Tensor:
        """(B, T, size, size): the mean of every recorded A, upsampled to the image."""
        mean = self.sum / self.calls
        return F.interpolate(mean, size=(size, size), mode="bilinear", align_corners=False)


class ControlledAttention:
    """diffusers' attention processor (AttnProcessor) for a transformer block's self- or cross-attention, with A
    made explicit and handed to a AttentionControl."""

    def __init__(self, control: AttentionControl):
        self.control = control

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        cross = encoder_hidden_states is not None
        context = encoder_hidden_states if cross else hidden_states
        if cross and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key, value = attn.head_to_batch_dim(attn.to_k(context)), attn.head_to_batch_dim(attn.to_v(context))
        probs = self.control(attn.get_attention_scores(query, key, None), attn.heads, cross)  # A = softmax(QKᵀ/√d)
        out = attn.to_out[1](attn.to_out[0](attn.batch_to_head_dim(torch.bmm(probs, value))))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


@contextmanager
def controlled(unet, control: AttentionControl):
    """The UNet with the attention layers of its transformer blocks (attn1: self, attn2: cross) under `control`;
    its processors restored afterwards."""
    saved = unet.attn_processors
    controlled_layers = (".attn1.", ".attn2.")
    unet.set_attn_processor(
        {
            name: ControlledAttention(control) if any(k in name for k in controlled_layers) else p
            for name, p in saved.items()
        }
    )
    try:
        yield unet
    finally:
        unet.set_attn_processor(saved)
