"""`t2i generate`: prompts -> PNGs whose text chunks record how each image was made.

Each PNG carries a `parameters` chunk in the format Stable Diffusion web UIs write and read
("PROMPT\\nNegative prompt: ...\\nSteps: 20, Sampler: dpm++, CFG scale: 3.0, Seed: 7, Size: 64x64,
Model hash: ..., Model: ..."; a GAN's "Truncation: 1.0" in place of the sampler settings) and a `t2i`
chunk with the same values as JSON. Any family's pipeline (t2i.families) works here.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, PngImagePlugin

from t2i.grid import make_grid

WEB_UI_NAMES = {"steps": "Steps", "scheduler": "Sampler", "guidance": "CFG scale", "strength": "Denoising strength"}
# (the web UIs' own labels; any other setting is written as its name, capitalised, "_" as a space)


@dataclass
class GenerationParameters:
    prompt: str
    negative_prompt: str
    seed: int
    size: int
    model: str
    model_hash: str
    family: str  # the model family (t2i.families)
    settings: dict  # the family's sampling settings, e.g. {"steps": 20, "guidance": 3.0, "scheduler": "dpm++"}

    @classmethod
    def drawn_by(cls, pipe, prompt: str, negative_prompt: str, *, seed: int, size: int, settings: dict):
        """The parameters of an image that `pipe` drew."""
        model = {"model": pipe.name, "model_hash": pipe.hash, "family": pipe.family}
        return cls(prompt=prompt, negative_prompt=negative_prompt, seed=seed, size=size, settings=settings, **model)

    def web_ui_text(self) -> str:
        order = list(WEB_UI_NAMES)  # the web UIs' order first: "Steps: 20, Sampler: dpm++, CFG scale: 3.0"
        ranked = sorted(self.settings.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
        settings = ", ".join(f"{WEB_UI_NAMES.get(k, k.replace('_', ' ').capitalize())}: {v}" for k, v in ranked)
        return (
            f"{self.prompt}\nNegative prompt: {self.negative_prompt}\n{settings}, Seed: {self.seed}, "
            f"Size: {self.size}x{self.size}, Model hash: {self.model_hash}, Model: {self.model}"
        )


def save_png(image: Image.Image, parameters: GenerationParameters, file: str | Path | BinaryIO) -> None:
    """Write a PNG (to a path or a binary file object) with the parameters in its text chunks."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters.web_ui_text())
    info.add_text("t2i", json.dumps(asdict(parameters)))
    image.save(file, format="PNG", pnginfo=info)


def save_grid_png(grid: Image.Image, parameters: list[GenerationParameters], path: Path) -> None:
    """Write a grid PNG whose `t2i-grid` text chunk lists the parameters of each cell, in reading order."""
    info = PngImagePlugin.PngInfo()
    info.add_text("t2i-grid", json.dumps([asdict(p) for p in parameters]))
    grid.save(path, format="PNG", pnginfo=info)


def read_png_parameters(path: str | Path) -> GenerationParameters:
    """The parameters an image was generated with (its `t2i` text chunk)."""
    with Image.open(path) as image:
        text = image.text.get("t2i")
    if text is None:
        raise ValueError(f"{path}: no t2i generation parameters in this PNG")
    values = json.loads(text)
    if "settings" not in values:  # written before model families: a latent diffusion model's settings at the top
        values["settings"] = {k: values.pop(k) for k in ("steps", "guidance", "scheduler")}
        values["family"] = "latent-diffusion"
    return GenerationParameters(**values)


MAX_PROMPTS_BYTES = 16 * 2**20


def read_prompts_file(path: str | Path) -> list[dict]:
    """One prompt per line, or JSONL lines {"prompt": ..., "negative_prompt": ...}; blank lines skipped."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"prompts file {path}: not found")
    if path.is_dir():
        raise ValueError(f"prompts file {path}: is a folder, not a file")
    with path.open("rb") as f:  # bounded: a device file or a pipe may never end
        data = f.read(MAX_PROMPTS_BYTES + 1)
    if len(data) > MAX_PROMPTS_BYTES:
        raise ValueError(f"prompts file {path}: over {MAX_PROMPTS_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"prompts file {path}: not UTF-8 text (byte {error.start})") from None
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(entry.get("prompt"), str):
                raise ValueError(f"{path}:{number}: a JSON line needs a string 'prompt'")
            prompts.append({"prompt": entry["prompt"], "negative_prompt": entry.get("negative_prompt", "")})
        else:
            prompts.append({"prompt": line.strip(), "negative_prompt": ""})
    if not prompts:
        raise ValueError(f"{path}: no prompts in this file")
    return prompts


def slug(text: str, length: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:length] or "unconditional"


def generate_with_parameters(
    pipe, prompt: str, negative_prompt: str = "", n: int = 1, seed: int = 0, settings=None, callback=None
) -> list[tuple[Image.Image, GenerationParameters]]:
    """n images of one prompt (image k has seed + k) from any family's pipeline, each with the parameters that
    make it again. `settings`: the family's sampling settings (None: the model's defaults, `pipe.defaults`)."""
    settings = settings or pipe.defaults
    images = pipe(
        prompt,
        negative_prompt=negative_prompt,
        seed=seed,
        num_images_per_prompt=n,
        callback=callback,
        settings=settings,
    )
    values = asdict(settings)
    return [
        (
            image,
            GenerationParameters.drawn_by(
                pipe, prompt, negative_prompt, seed=seed + k, size=image.width, settings=values
            ),
        )
        for k, image in enumerate(images)
    ]


def generate_images(
    pipe, prompts: list[dict], out_dir: str | Path, n: int = 1, seed: int = 0, settings=None, callback=None
) -> list[Path]:
    """n images per prompt (image k of a prompt has seed + k) as PNGs with parameters; a grid per prompt
    when n > 1, and `grid.png` (a row per prompt) when there are several prompts.

    Returns the paths written: each image, then each grid."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, grids, rows, labels, cells = [], [], [], [], []
    for number, entry in enumerate(prompts):
        made = generate_with_parameters(pipe, entry["prompt"], entry["negative_prompt"], n, seed, settings, callback)
        stem = f"{number:04d}-{slug(entry['prompt'])}"
        for image, parameters in made:
            written.append(out / f"{stem}-seed{parameters.seed}.png")
            save_png(image, parameters, written[-1])
        images = [image for image, _ in made]
        captions = [f"seed {seed + k}" for k in range(n)]
        if n > 1:
            grids.append(out / f"{stem}-grid.png")
            save_grid_png(make_grid(images, captions, cols=min(n, 8)), [p for _, p in made], grids[-1])
        rows += images
        cells += [p for _, p in made]
        labels += [entry["prompt"] or "(empty prompt)"] + captions[1:]
    if len(prompts) > 1:
        grids.append(out / "grid.png")
        save_grid_png(make_grid(rows, labels, cols=n), cells, grids[-1])
    return written + grids
