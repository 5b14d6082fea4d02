"""`t2i edit`, `t2i inpaint`, `t2i attend`: an image or a prompt edited, and where each word looked, as PNGs that
record their parameters the way `t2i generate`'s do (the edit's own values beside the sampler's: "Denoising
strength", "Source prompt", ...). The work is the diffusion pipeline's (`image=`, `mask_image=`,
`source_prompt=`, `return_attention=`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib
import torch
from PIL import Image, UnidentifiedImageError

from t2i.attention import AttentionMaps
from t2i.data.check import open_rgb
from t2i.generate import GenerationParameters, save_png, slug
from t2i.grid import make_grid
from t2i.settings import MAX_ASPECT, MAX_PIXELS, SWAP_STEPS


def size_problem(width: int, height: int, max_pixels: int = MAX_PIXELS, max_aspect: float = MAX_ASPECT) -> str | None:
    """Why an image of this size is not edited (None: it is), read from its header before anything is decoded."""
    if width * height > max_pixels:
        return f"{width}×{height} pixels: over the limit of {max_pixels} pixels"
    if max(width, height) > max_aspect * min(width, height):
        return f"{width}×{height} pixels: one side over {max_aspect:g}× the other (the image is centre-cropped)"
    return None


def read_image(path: str | Path, flag: str = "--image") -> Image.Image:
    """An image file as RGB (or a clear ValueError naming the flag): its size checked from the header first."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{flag} {path}: no such file")
    try:
        with Image.open(path) as header:
            problem = size_problem(*header.size)
        image = None if problem else open_rgb(path)[0]
    except Image.DecompressionBombError as error:
        problem = str(error)
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, ValueError) as error:
        problem = f"not an image this program can read ({error})"
    if problem:
        raise ValueError(f"{flag} {path}: {problem}")
    return image


@dataclass
class Edited:
    """One image of an edit, with the parameters that make it again."""

    image: Image.Image
    parameters: GenerationParameters
    source: Image.Image | None = None  # a word swap's source image (the source prompt, the same seed)
    source_parameters: GenerationParameters | None = None  # ... and what makes it again
    attention: AttentionMaps | None = None  # where each token of the prompt looked (attention=True)


def edit_with_parameters(
    pipe,
    prompt: str,
    negative_prompt: str = "",
    n: int = 1,
    seed: int = 0,
    settings=None,
    callback=None,
    image: Image.Image | None = None,
    strength: float = 1.0,
    mask: Image.Image | None = None,
    source_prompt: str | None = None,
    swap_steps: float = SWAP_STEPS,
    local_blend: bool = False,
    attention: bool = False,
) -> list[Edited]:
    """n images of `prompt` (image k has seed + k) drawn from `image` at `strength` (and repainted where `mask`
    is white), or word-swapped from `source_prompt`, or plain text-to-image; with `attention`, each with its
    per-token maps. The parameters record the edit beside the sampler's settings ("Denoising strength", ...)."""
    settings = settings or pipe.defaults
    edits = {"image": image, "strength": strength, "mask_image": mask, "negative_prompt": negative_prompt}
    edits |= {"seed": seed, "num_images_per_prompt": n, "settings": settings, "callback": callback}
    swap = dict(source_prompt=source_prompt, swap_steps=swap_steps, local_blend=local_blend)
    made = pipe(prompt, **swap, return_attention=attention, **edits)
    images, maps = made if attention else (made, [None] * n)
    sources = pipe(source_prompt, **edits) if source_prompt is not None else [None] * n
    recorded = asdict(settings) | ({"strength": strength} if image is not None else {})  # what the source shares
    if mask is not None:
        recorded["inpainted"] = True
    swapped = {}
    if source_prompt is not None:
        swapped = {"source_prompt": source_prompt, "swap_steps": swap_steps} | (
            {"local_blend": True} if local_blend else {}
        )
    made = []
    for k, (image, source, attention_maps) in enumerate(zip(images, sources, maps, strict=True)):
        drawn = {"seed": seed + k, "size": image.width, "settings": recorded | swapped}
        parameters = GenerationParameters.drawn_by(pipe, prompt, negative_prompt, **drawn)
        source_parameters = None if source is None else replace(parameters, prompt=source_prompt, settings=recorded)
        made.append(Edited(image, parameters, source, source_parameters, attention_maps))
    return made


def edit(
    pipe,
    prompt: str,
    out_dir: str | Path,
    *,
    image: Image.Image | None = None,
    strength: float = 1.0,
    mask: Image.Image | None = None,
    source_prompt: str | None = None,
    swap_steps: float = SWAP_STEPS,
    seed: int = 0,
    settings=None,
    local_blend: bool = False,
) -> list[Path]:
    """`t2i edit` and `t2i inpaint`: the prompt drawn from `image` at `strength` (and repainted where `mask` is
    white), or, with `source_prompt`, the source prompt's image and its word-swapped edit side by side. Returns
    the PNGs written: the edit, then (word swap) the source image and a two-image grid."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    swap = {"source_prompt": source_prompt, "swap_steps": swap_steps, "local_blend": local_blend}
    edit = {"image": image, "strength": strength, "mask": mask} | swap
    [made] = edit_with_parameters(pipe, prompt, seed=seed, settings=settings, **edit)
    stem = out / f"{slug(prompt)}-seed{seed}"
    written = [stem.with_name(stem.name + "-edit.png")]
    save_png(made.image, made.parameters, written[0])
    if source_prompt is not None:
        written.append(stem.with_name(stem.name + "-source.png"))
        save_png(made.source, made.source_parameters, written[-1])
        written.append(stem.with_name(stem.name + "-swap.png"))
        make_grid([made.source, made.image], [source_prompt, prompt], cols=2, cell=192).save(written[-1])
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
    [made] = edit_with_parameters(pipe, prompt, seed=seed, settings=settings, attention=True)
    path = out / f"{slug(prompt)}-seed{seed}.png"
    save_png(made.image, made.parameters, path)
    cells = [made.image] + [heat_map(made.image, m) for m in made.attention.maps]
    grid = make_grid(cells, ["image", *made.attention.tokens], cols=min(len(cells), 8), cell=128)
    grid.save(out / f"{slug(prompt)}-seed{seed}-attention.png")
    return [path, out / f"{slug(prompt)}-seed{seed}-attention.png"]
