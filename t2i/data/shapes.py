"""A compositional benchmark that is not faces: two coloured shapes side by side, captioned in three sentence
shapes, asked in a fourth.

    OUT/
      00000.png ...     32×32 images: a shape in each half (circle, square or triangle; red, green, blue or yellow)
      metadata.jsonl    an imagefolder: file_name, text (the image in each TRAINING_TEMPLATES), attributes (±1 for
                        each side's colours and shapes: "left_red", "right_circle", ...)
      prompts.jsonl     (prompt, rephrasing) pairs for `t2i eval rephrasing --prompts`: every held-out combination
                        and as many seen ones, each in a training template and in HELD_OUT_TEMPLATE

A combination is (left colour, left shape, right colour, right shape): 12 × 12 = 144; `held_out` of them (drawn
from the seed) are in no image, so a model that draws them composes what it learned of each side. The held-out
template uses the same words in a sentence no caption has. Everything is a pure function of (n, seed).
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (30, 170, 60), "blue": (40, 70, 220), "yellow": (235, 200, 30)}
SHAPES = ("circle", "square", "triangle")
SIDES = ("left", "right")
SIZE = 32
BACKGROUND = (235, 235, 235)
TRAINING_TEMPLATES = (
    "a {lc} {ls} on the left and a {rc} {rs} on the right",
    "left: {lc} {ls}, right: {rc} {rs}",
    "a {rc} {rs} on the right, a {lc} {ls} on the left",
)
HELD_OUT_TEMPLATE = "there is a {rc} {rs} on the right side and a {lc} {ls} on the left side"
COMBINATIONS = list(itertools.product(COLOURS, SHAPES, COLOURS, SHAPES))  # (lc, ls, rc, rs)


def draw_shape(pen: ImageDraw.ImageDraw, shape: str, colour: str, left: int, top: int, size: int) -> None:
    box = (left, top, left + size, top + size)
    if shape == "circle":
        pen.ellipse(box, fill=COLOURS[colour])
    elif shape == "square":
        pen.rectangle(box, fill=COLOURS[colour])
    else:
        pen.polygon([(left, top + size), (left + size, top + size), (left + size // 2, top)], fill=COLOURS[colour])


def draw(parts: tuple[str, str, str, str], rng: random.Random) -> Image.Image:
    """One image: each side's shape at a random size (9-13 px) and place inside its half."""
    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    pen = ImageDraw.Draw(image)
    for half, (colour, shape) in enumerate((parts[:2], parts[2:])):
        size = rng.randint(9, 13)
        left = half * SIZE // 2 + rng.randint(1, SIZE // 2 - 1 - size)
        draw_shape(pen, shape, colour, left, rng.randint(2, SIZE - 2 - size), size)
    return image


def caption(parts: tuple[str, str, str, str], template: str) -> str:
    lc, ls, rc, rs = parts
    return template.format(lc=lc, ls=ls, rc=rc, rs=rs)


def attributes(parts: tuple[str, str, str, str], positives_only: bool = False) -> dict[str, int]:
    """{"left_red": 1, "left_blue": -1, ..., "right_triangle": 1}: every side's colours and shapes (only the ones
    present when `positives_only`, what a prompt asserts)."""
    shown = {f"{side}_{value}" for side, pair in zip(SIDES, (parts[:2], parts[2:]), strict=True) for value in pair}
    every = [f"{side}_{value}" for side in SIDES for value in (*COLOURS, *SHAPES)]
    return {name: 1 if name in shown else -1 for name in every if name in shown or not positives_only}


def held_out_combinations(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """`n` combinations drawn from the seed (each side's colour and shape stay in other, seen ones: tested)."""
    return random.Random(f"held-out {seed}").sample(COMBINATIONS, n)


def make_shapes(out: str | Path, n: int = 8000, seed: int = 0, held_out: int = 24) -> Path:
    """Write the dataset and its prompts file to `out` (see the module's docstring)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unseen = held_out_combinations(held_out, seed)
    seen = [c for c in COMBINATIONS if c not in unseen]
    rng, rows = random.Random(seed), []
    for i in range(n):
        parts = rng.choice(seen)
        draw(parts, rng).save(out / f"{i:05d}.png")
        rows.append(
            {
                "file_name": f"{i:05d}.png",
                "text": [caption(parts, t) for t in TRAINING_TEMPLATES],
                "attributes": attributes(parts),
            }
        )
    (out / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    asked = [(c, True) for c in unseen] + [(c, False) for c in random.Random(f"seen {seed}").sample(seen, held_out)]
    pairs = [
        {
            "prompt": caption(parts, TRAINING_TEMPLATES[k % len(TRAINING_TEMPLATES)]),
            "rephrasing": caption(parts, HELD_OUT_TEMPLATE),
            "attributes": attributes(parts, positives_only=True),
            "held_out": is_held_out,
        }
        for k, (parts, is_held_out) in enumerate(asked)
    ]
    (out / "prompts.jsonl").write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    return out
