"""`t2i edit`, `t2i inpaint`, `t2i attend`: an image or a prompt edited, and where each word looked, as PNGs that
record their parameters the way `t2i generate`'s do (the edit's own values beside the sampler's: "Denoising
strength", "Source prompt", ...). The work is the diffusion pipeline's (`image=`, `mask_image=`,
`source_prompt=`, `return_attention=`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import matplotlib
import torch
from PIL import Image, UnidentifiedImageError

from t2i.data.check import open_rgb
from t2i.generate import GenerationParameters, save_png, slug
from t2i.grid import make_grid


def read_image(path: str | Path, flag: str = "--image") -> Image.Image:
    """An image file as RGB (or a clear ValueError naming the flag)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{flag} {path}: no such file")
    try:
        image, _ = open_rgb(path)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"{flag} {path}: not an image this program can read ({error})") from None
    return image


def _save(pipe, image: Image.Image, prompt: str, seed: int, settings, extra: dict, path: Path) -> Path:
    values = asdict(settings or pipe.defaults) | extra
    save_png(
        image, GenerationParameters(prompt, "", seed, image.width, pipe.name, pipe.hash, pipe.family, values), path
    )
    return path


def edit(
    pipe,
    prompt: str,
    out_dir: str | Path,
    image: Image.Image | None = None,
    strength: float = 1.0,
    mask: Image.Image | None = None,
    source_prompt: str | None = None,
    swap_steps: float = 0.8,
    seed: int = 0,
    settings=None,
) -> list[Path]:
    """`t2i edit` and `t2i inpaint`: the prompt drawn from `image` at `strength` (and repainted where `mask` is
    white), or, with `source_prompt`, the source prompt's image and its word-swapped edit side by side. Returns
    the PNGs written: the edit, then (word swap) the source image and a two-image grid."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    edited = pipe(prompt, image=image, strength=strength, mask_image=mask, source_prompt=source_prompt,
                  swap_steps=swap_steps, seed=seed, settings=settings)[0]  # fmt: skip
    extra = {"strength": strength} if image is not None else {}
    if source_prompt is not None:
        extra |= {"source_prompt": source_prompt, "swap_steps": swap_steps}
    if mask is not None:
        extra["inpainted"] = True
    written = [_save(pipe, edited, prompt, seed, settings, extra, out / f"{slug(prompt)}-seed{seed}-edit.png")]
    if source_prompt is not None:
        source = pipe(source_prompt, image=image, strength=strength, mask_image=mask, seed=seed, settings=settings)[0]
        source_extra = {k: v for k, v in extra.items() if k not in ("source_prompt", "swap_steps")}
        written.append(
            _save(
                pipe, source, source_prompt, seed, settings, source_extra, out / f"{slug(prompt)}-seed{seed}-source.png"
            )
        )
        make_grid([source, edited], [source_prompt, prompt], cols=2, cell=192).save(
            out / f"{slug(prompt)}-seed{seed}-swap.png"
        )
        written.append(out / f"{slug(prompt)}-seed{seed}-swap.png")
    return written


def heat_map(image: Image.Image, attention: torch.Tensor) -> Image.Image:
    """The image under one token's attention map (scaled to its own maximum), in matplotlib's 'jet' colours."""
    weights = (attention / attention.max().clamp(min=1e-12)).numpy()
    colours = Image.fromarray((matplotlib.colormaps["jet"](weights)[..., :3] * 255).astype("uint8"))
    return Image.blend(image.convert("RGB"), colours.resize(image.size), alpha=0.5)


def attend(pipe, prompt: str, out_dir: str | Path, seed: int = 0, settings=None) -> list[Path]:
    """`t2i attend`: the image, and a grid of it under each of the prompt's tokens' attention maps. Returns the
    image PNG (with parameters) and the grid PNG."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images, maps = pipe(prompt, seed=seed, settings=settings, return_attention=True)
    image, attention = images[0], maps[0]
    path = _save(pipe, image, prompt, seed, settings, {}, out / f"{slug(prompt)}-seed{seed}.png")
    cells = [image] + [heat_map(image, m) for m in attention.maps]
    grid = make_grid(cells, ["image", *attention.tokens], cols=min(len(cells), 8), cell=128)
    grid.save(out / f"{slug(prompt)}-seed{seed}-attention.png")
    return [path, out / f"{slug(prompt)}-seed{seed}-attention.png"]
