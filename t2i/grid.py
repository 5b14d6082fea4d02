"""Image grids with optional text under each picture: dataset previews, reconstructions, sample grids."""

from __future__ import annotations

import textwrap

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) tensor in [-1, 1] -> list of PIL images."""
    array = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a) for a in array.permute(0, 2, 3, 1).cpu().numpy()]


def pil_tensor(image: Image.Image, size: int, mode: str = "RGB") -> torch.Tensor:
    """A PIL image as a (channels, size, size) tensor in [0, 1]: the short side resized to `size`, centre-cropped."""
    image = image.convert(mode)
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.LANCZOS)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    return torch.from_numpy(array.reshape(size, size, -1)).permute(2, 0, 1).contiguous()


def caption_lines(text: str, chars: int, max_lines: int) -> list[str]:
    """`text` wrapped at `chars` characters into at most `max_lines` lines; a cut ends with "..."."""
    lines = textwrap.wrap(text, chars)
    if len(lines) <= max_lines:
        return lines
    return [*lines[: max_lines - 1], textwrap.shorten(" ".join(lines[max_lines - 1 :]), chars, placeholder=" ...")]


def make_grid(
    images: list[Image.Image], captions: list[str] | None = None, cols: int = 8, cell: int = 128, text_lines: int = 4
) -> Image.Image:
    """Paste images (upscaled to `cell` px, nearest neighbour) in rows; wrap each caption underneath
    (at most `text_lines` lines)."""
    font = ImageFont.load_default(size=max(9, cell // 12))
    chars = max(10, int(cell / (font.size * 0.55)))
    text_h = (font.size + 2) * text_lines + 4 if captions else 0
    rows = (len(images) + cols - 1) // cols
    cols = min(cols, len(images))
    grid = Image.new("RGB", (cols * cell, rows * (cell + text_h)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for i, image in enumerate(images):
        x, y = (i % cols) * cell, (i // cols) * (cell + text_h)
        grid.paste(image.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST), (x, y))
        if captions:
            lines = caption_lines(captions[i], chars, text_lines)
            draw.multiline_text((x + 2, y + cell + 2), "\n".join(lines), fill=(0, 0, 0), font=font, spacing=2)
    return grid
