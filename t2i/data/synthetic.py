"""Procedural captioned faces written in the Multi-Modal CelebA-HQ layout.

    DIR/CelebA-HQ-img/<id>.png            the images
    DIR/celeba-caption/<id>.txt           10 captions, one per line
    DIR/CelebAMask-HQ-attribute-anno.txt  count line, 40 attribute names, then "<file> v1 ... v40" (1/-1)

Each face is drawn with PIL on a canvas of at least 256 px (coordinates below are in a 256-unit frame),
then rotated, scaled and moved as a whole, lit by a gradient, downsampled with antialiasing and given
mild noise. Attributes are drawn from `sample_attributes` (plausible dependencies, each rendered one
present in 15-85% of images); everything else (background, skin tone, eye colour, pose, lighting, hair
length, clothing colours) varies freely so a model has to learn a distribution, not a template.
Image i depends only on (seed, i), so any worker count gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from t2i.data.captions import CELEBA_ATTRIBUTES, PHRASES, write_captions

# The attributes this renderer draws; the other CelebA columns are written as -1 (not rendered).
RENDERED_ATTRIBUTES = tuple(sorted(set(PHRASES) | {"Male"}))

HAIR_COLOURS = {
    "Black_Hair": (28, 24, 22),
    "Blond_Hair": (226, 190, 105),
    "Brown_Hair": (125, 64, 22),
    "Gray_Hair": (168, 168, 172),
}
LIPSTICK = ((200, 20, 45), (225, 40, 110), (150, 15, 60), (235, 70, 70))
EYESHADOW = ((120, 60, 170), (40, 110, 190), (30, 140, 120), (190, 90, 150))
EYE_COLOURS = ((70, 45, 25), (50, 100, 160), (60, 120, 70), (110, 90, 60), (40, 40, 40))
JEWEL = ((235, 195, 50), (215, 215, 225), (250, 245, 235))


def sample_attributes(rng: np.random.Generator) -> dict[str, int]:
    """Draw the rendered attributes with plausible dependencies; returns all 40 CelebA columns (1/-1)."""
    r = rng.random
    male = r() < 0.5
    young = r() < 0.6
    bald = male and r() < 0.35
    hat = not bald and r() < 0.28
    hair = None
    if not bald:
        if r() < (0.04 if young else 0.55):
            hair = "Gray_Hair"
        else:
            hair = ("Black_Hair", "Blond_Hair", "Brown_Hair")[rng.integers(3)]
    heavy_makeup = not male and r() < 0.4
    mustache = male and r() < 0.4
    goatee = male and r() < 0.4
    big_nose = r() < 0.3
    necktie = r() < (0.5 if male else 0.05)
    a = {
        "Male": male,
        "Young": young,
        "Bald": bald,
        "Wearing_Hat": hat,
        "Bangs": not bald and r() < 0.35,
        "Wavy_Hair": not bald and r() < 0.4,
        "Smiling": r() < 0.5,
        "Mouth_Slightly_Open": r() < 0.45,
        "Heavy_Makeup": heavy_makeup,
        "Wearing_Lipstick": not male and (heavy_makeup or r() < 0.55),
        "Eyeglasses": r() < 0.3,
        "Mustache": mustache,
        "Goatee": goatee,
        "No_Beard": not (mustache or goatee),
        "Rosy_Cheeks": r() < 0.25,
        "Bushy_Eyebrows": r() < (0.45 if male else 0.15),
        "Arched_Eyebrows": r() < (0.2 if male else 0.5),
        "Pale_Skin": r() < 0.2,
        "Big_Nose": big_nose,
        "Pointy_Nose": not big_nose and r() < 0.4,
        "Big_Lips": r() < 0.3,
        "Narrow_Eyes": r() < 0.25,
        "Chubby": r() < 0.25,
        "Wearing_Earrings": r() < (0.1 if male else 0.55),
        "Wearing_Necktie": necktie,
        "Wearing_Necklace": not necktie and r() < (0.08 if male else 0.5),
    }
    out = {name: -1 for name in CELEBA_ATTRIBUTES}
    out.update({name: 1 if value else -1 for name, value in a.items()})
    if hair:
        out[hair] = 1
    return out


def _shade(colour, factor):
    return tuple(int(max(0, min(255, c * factor))) for c in colour)


def _mix(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))


PARTS_FOLDER = "CelebAMask-HQ-parts"  # beside CelebA-HQ-img/, as MM-CelebA-HQ's CelebAMask-HQ masks are
PARTS = (
    "background",
    "skin",
    "clothes",
    "hair",
    "eyes",
    "eyebrows",
    "nose",
    "mouth",
    "beard",
    "eyeglasses",
    "hat",
    "earrings",
    "necklace",
)  # the part map's labels: value k is PARTS[k]


class _Painter:
    """ImageDraw in a 256-unit frame scaled to the real canvas (u pixels per unit). With `labels` (an "L" image
    of the same size), every shape is also drawn there in the value of the current `part` (PARTS), so later
    shapes hide earlier ones in the part map as they do in the picture."""

    def __init__(self, image: Image.Image, u: float, labels: Image.Image | None = None):
        self.draws = [(ImageDraw.Draw(image, "RGBA"), None)]
        if labels is not None:
            self.draws.append((ImageDraw.Draw(labels), labels))
        self.u, self.part = u, "skin"

    def _box(self, cx, cy, rx, ry):
        u = self.u
        return [(cx - rx) * u, (cy - ry) * u, (cx + rx) * u, (cy + ry) * u]

    def _each(self, shape: str, *args, fill=None, outline=None, **kwargs):
        for draw, labels in self.draws:
            if labels is not None:  # the part map: the part's value wherever the picture gets paint
                value = PARTS.index(self.part)
                fill, outline = (None if fill is None else value), (None if outline is None else value)
            getattr(draw, shape)(*args, fill=fill, **({} if outline is None else {"outline": outline}), **kwargs)

    def ellipse(self, cx, cy, rx, ry, fill=None, outline=None, width=1):
        width = max(1, round(width * self.u))
        self._each("ellipse", self._box(cx, cy, rx, ry), fill=fill, outline=outline, width=width)

    def chord(self, cx, cy, rx, ry, start, end, fill=None, outline=None, width=1):
        width = max(1, round(width * self.u))
        self._each("chord", self._box(cx, cy, rx, ry), start, end, fill=fill, outline=outline, width=width)

    def arc(self, cx, cy, rx, ry, start, end, fill, width):
        self._each("arc", self._box(cx, cy, rx, ry), start, end, fill=fill, width=max(1, round(width * self.u)))

    def polygon(self, points, fill):
        self._each("polygon", [(x * self.u, y * self.u) for x, y in points], fill=fill)

    def line(self, points, fill, width):
        self._each(
            "line", [(x * self.u, y * self.u) for x, y in points], fill=fill, width=max(1, round(width * self.u))
        )


def _hair_outline(cx, top, rx, bottom, wavy, phase, n=48):
    """Closed outline of the hair mass behind the head: an ellipse-topped shape, wavy sides if asked."""
    points = []
    for i in range(n + 1):
        t = math.pi * i / n  # left side down to right side over the top
        x = cx - rx * math.cos(t)
        y = top + (bottom - top) * (1 - math.sin(t)) if t else bottom
        y = min(y, bottom)
        if wavy:
            x += 6 * math.sin(8 * t + phase) * (1 - 0.5 * math.sin(t))
        points.append((x, y))
    return [(cx - rx, bottom)] + points + [(cx + rx, bottom)]


def render_face(attrs: dict[str, int], rng: np.random.Generator, size: int, parts: bool = False):
    """Draw one face with the given attributes; all nuisance factors come from rng. With `parts`, also its
    part map: (image, an "L" image of PARTS indices, what is visible of each part)."""
    canvas = max(256, 2 * size)
    u = canvas / 256
    on = lambda name: attrs[name] == 1  # noqa: E731

    # nuisance factors
    background = tuple(int(v) for v in rng.integers(30, 230, size=3))
    if on("Pale_Skin"):
        skin = _mix((250, 232, 225), (240, 222, 212), rng.random())
    else:
        skin = _mix((226, 182, 146), (150, 100, 70), rng.random())
    skin_dark = _shade(skin, 0.78)
    hair_name = next((h for h in HAIR_COLOURS if on(h)), None)
    hair = _mix(HAIR_COLOURS[hair_name], (0, 0, 0), 0.15 * rng.random()) if hair_name else None
    brow = _shade(hair, 0.55) if hair else (60, 45, 35)
    long_hair = rng.random() < (0.15 if on("Male") else 0.8)
    shirt = tuple(int(v) for v in rng.integers(20, 235, size=3))
    eye_colour = EYE_COLOURS[rng.integers(len(EYE_COLOURS))]
    wave_phase = rng.random() * 6.28

    # the person is drawn on a transparent layer taller than the canvas, then posed as a whole
    layer = Image.new("RGBA", (canvas, int(canvas * 1.4)), (0, 0, 0, 0))
    labels = Image.new("L", layer.size, 0) if parts else None
    p = _Painter(layer, u, labels)
    cx, cy = 128, 120
    rx, ry = (68, 74) if on("Chubby") else (55, 71)
    rx -= 0 if on("Male") else 4

    # hair behind the head
    p.part = "hair"
    if hair and long_hair:
        p.polygon(_hair_outline(cx, cy - ry - 12, rx + 18, cy + 95, on("Wavy_Hair"), wave_phase), hair)
    elif hair:
        p.polygon(_hair_outline(cx, cy - ry - 12, rx + 9, cy + 5, on("Wavy_Hair"), wave_phase), hair)

    # torso, neck, clothing
    p.part = "clothes"
    p.ellipse(cx, 300, 115, 95, fill=shirt)
    p.part = "skin"
    p.polygon([(cx - 22, cy + 40), (cx + 22, cy + 40), (cx + 26, 215), (cx - 26, 215)], skin_dark)
    p.part = "clothes"
    if on("Wearing_Necktie"):
        collar = (245, 245, 245)
        p.polygon([(cx - 40, 208), (cx, 222), (cx - 18, 240)], collar)
        p.polygon([(cx + 40, 208), (cx, 222), (cx + 18, 240)], collar)
        tie = _mix(tuple(int(v) for v in rng.integers(0, 255, size=3)), _shade(shirt, 0.3), 0.3)
        p.polygon([(cx - 8, 218), (cx + 8, 218), (cx + 5, 228), (cx - 5, 228)], tie)
        p.polygon([(cx - 5, 228), (cx + 5, 228), (cx + 13, 290), (cx, 305), (cx - 13, 290)], tie)
    else:
        p.part = "skin"
        p.polygon([(cx - 30, 210), (cx + 30, 210), (cx, 240)], skin_dark)  # open neckline
    p.part = "necklace"
    if on("Wearing_Necklace"):
        jewel = JEWEL[rng.integers(len(JEWEL))]
        p.arc(cx, 196, 30, 28, 20, 160, fill=jewel, width=5)
        p.ellipse(cx, 228, 7, 8, fill=jewel)

    # ears and earrings
    p.part = "skin"
    for side in (-1, 1):
        p.ellipse(cx + side * (rx - 2), cy + 8, 11, 18, fill=skin_dark)
    # face
    p.ellipse(cx, cy, rx, ry, fill=skin)
    if on("Male"):  # a square jaw
        p.polygon(
            [
                (cx - rx + 1, cy),
                (cx + rx - 1, cy),
                (cx + rx - 7, cy + ry - 20),
                (cx + 24, cy + ry - 1),
                (cx - 24, cy + ry - 1),
                (cx - rx + 7, cy + ry - 20),
            ],
            skin,
        )
    if on("Chubby"):
        p.arc(cx, cy + ry - 14, 30, 12, 20, 160, fill=skin_dark, width=3)  # double chin line
    if on("Wearing_Earrings"):
        p.part = "earrings"
        jewel = JEWEL[rng.integers(len(JEWEL))]
        for side in (-1, 1):
            p.ellipse(cx + side * (rx + 2), cy + 34, 9, 10, outline=jewel, width=5)

    # hair on top of the head
    p.part = "hair"
    if hair:
        p.chord(cx, cy - 44, rx + 4, ry - 14, 180, 360, fill=hair)
        if on("Wavy_Hair"):
            for k in range(4):
                x0 = cx - 40 + 27 * k
                p.arc(x0, cy - 70, 12, 8, 200, 340, fill=_shade(hair, 0.7), width=3)
        if on("Bangs"):
            fringe = [(cx - rx + 4, cy - 48)]
            for k in range(9):
                x = cx - rx + 8 + k * (2 * rx - 16) / 8
                fringe.append((x, cy - 26 if k % 2 == 0 else cy - 33))
            fringe += [(cx + rx - 4, cy - 48), (cx + rx - 10, cy - 64), (cx - rx + 10, cy - 64)]
            p.polygon(fringe, hair)
    elif on("Bald"):
        p.part = "skin"
        p.ellipse(cx - 18, cy - 50, 14, 7, fill=_mix(skin, (255, 255, 255), 0.45))  # scalp highlight

    eye_y, eye_dx = cy - 4, 22

    # wrinkles of age
    p.part = "skin"
    if not on("Young"):
        line = _shade(skin, 0.55)
        if not on("Bangs") or not hair:
            for k in range(2):
                p.arc(cx, cy - 34 + 6 * k, 20, 5, 200, 340, fill=line, width=4)
        for side in (-1, 1):
            p.line([(cx + side * 14, cy + 20), (cx + side * 28, cy + 46)], fill=line, width=4)
            p.line([(cx + side * 38, cy - 4), (cx + side * 48, cy - 9)], fill=line, width=3)
            p.line([(cx + side * 38, cy + 2), (cx + side * 48, cy + 4)], fill=line, width=3)
            p.arc(cx + side * eye_dx, eye_y + 10, 11, 5, 20, 160, fill=line, width=3)  # bags under the eyes

    # eyes, makeup, brows
    eye_h = 4 if on("Narrow_Eyes") else 8
    shadow = EYESHADOW[rng.integers(len(EYESHADOW))] if on("Heavy_Makeup") else None
    for side in (-1, 1):
        ex = cx + side * eye_dx
        p.part = "eyes"
        if shadow:
            p.ellipse(ex, eye_y - 6, 15, 9, fill=shadow + (220,))
        p.ellipse(ex, eye_y, 12, eye_h, fill=(245, 245, 240))
        p.ellipse(ex, eye_y, min(6, eye_h), min(6, eye_h), fill=eye_colour)
        p.ellipse(ex, eye_y, 2.5, min(2.5, eye_h), fill=(10, 10, 10))
        if on("Heavy_Makeup"):
            p.arc(ex, eye_y, 13, eye_h + 1, 190, 350, fill=(15, 10, 10), width=3)
        if not on("Male"):  # eyelashes at the outer corner
            for k in range(3):
                p.line(
                    [(ex + side * 9, eye_y - 4 - 2 * k), (ex + side * (15 + k), eye_y - 9 - 3 * k)],
                    fill=(20, 15, 15),
                    width=2.5,
                )
        brow_w, brow_l = (11, 17) if on("Bushy_Eyebrows") else (4, 13)
        p.part = "eyebrows"
        if on("Arched_Eyebrows"):
            p.line(
                [(ex - side * brow_l, eye_y - 12), (ex + side * 1, eye_y - 25), (ex + side * brow_l, eye_y - 14)],
                fill=brow,
                width=brow_w,
            )
        else:
            p.line([(ex - side * brow_l, eye_y - 16), (ex + side * brow_l, eye_y - 17)], fill=brow, width=brow_w)

    # cheeks
    p.part = "skin"
    if on("Rosy_Cheeks"):
        for side in (-1, 1):
            p.ellipse(cx + side * 34, cy + 22, 12, 9, fill=(235, 60, 80, 150))

    # nose
    p.part = "nose"
    nose, nostril = _shade(skin, 0.66), _shade(skin, 0.35)
    if on("Big_Nose"):  # broad and round
        p.polygon([(cx - 6, cy), (cx + 6, cy), (cx + 18, cy + 26), (cx - 18, cy + 26)], nose)
        p.ellipse(cx, cy + 28, 22, 11, fill=nose)
        for side in (-1, 1):
            p.ellipse(cx + side * 10, cy + 31, 5, 3.5, fill=nostril)
    elif on("Pointy_Nose"):  # long, narrow, a sharp tip with a light ridge
        p.polygon([(cx - 4, cy - 2), (cx + 4, cy - 2), (cx + 9, cy + 24), (cx, cy + 38), (cx - 9, cy + 24)], nose)
        p.line([(cx, cy), (cx, cy + 30)], fill=_mix(skin, (255, 255, 255), 0.4), width=3)
    else:
        p.polygon([(cx - 3, cy + 4), (cx + 3, cy + 4), (cx + 8, cy + 24), (cx - 8, cy + 24)], nose)
        p.ellipse(cx, cy + 25, 9, 5, fill=nose)
        for side in (-1, 1):
            p.ellipse(cx + side * 4, cy + 27, 2.5, 2, fill=nostril)

    # facial hair
    p.part = "beard"
    beard = _shade(hair, 0.6) if hair else (50, 40, 35)
    if on("Mustache"):
        p.polygon(
            [(cx - 22, cy + 41), (cx, cy + 34), (cx + 22, cy + 41), (cx + 20, cy + 46), (cx - 20, cy + 46)], beard
        )
    if on("Goatee"):
        p.polygon(
            [(cx - 14, cy + 58), (cx + 14, cy + 58), (cx + 10, cy + 76), (cx, cy + 80), (cx - 10, cy + 76)], beard
        )

    # mouth
    p.part = "mouth"
    lips = LIPSTICK[rng.integers(len(LIPSTICK))] if on("Wearing_Lipstick") else _mix(skin_dark, (120, 25, 40), 0.6)
    thick = 11 if on("Big_Lips") else 5
    my, mw = cy + 49, (25 if on("Smiling") else 17) + (4 if on("Big_Lips") else 0)
    if on("Mouth_Slightly_Open") and on("Smiling"):
        p.chord(cx, my - 6, mw, 14, 0, 180, fill=(70, 15, 20), outline=lips, width=thick)
        p.polygon(
            [(cx - mw + 5, my - 4), (cx + mw - 5, my - 4), (cx + mw - 8, my + 1), (cx - mw + 8, my + 1)],
            (245, 245, 240),
        )
    elif on("Mouth_Slightly_Open"):
        p.ellipse(cx, my, mw, 6 + thick, fill=lips)
        p.ellipse(cx, my, mw - thick, 6, fill=(70, 15, 20))
        p.polygon(
            [(cx - mw + 8, my - 5), (cx + mw - 8, my - 5), (cx + mw - 10, my - 2), (cx - mw + 10, my - 2)],
            (245, 245, 240),
        )
    elif on("Smiling"):
        p.arc(cx, my - 14, mw + 2, 19, 15, 165, fill=lips, width=thick + 3)
    else:
        p.ellipse(cx, my, mw, thick, fill=lips)
        p.line([(cx - mw + 2, my), (cx + mw - 2, my)], fill=_shade(lips, 0.5), width=2)

    # eyeglasses over the eyes
    p.part = "eyeglasses"
    if on("Eyeglasses"):
        frame = tuple(int(v) for v in rng.integers(0, 70, size=3))
        for side in (-1, 1):
            p.ellipse(cx + side * eye_dx, eye_y, 17, 14, outline=frame, width=4)
            p.line([(cx + side * (eye_dx + 17), eye_y - 2), (cx + side * (rx + 2), eye_y - 6)], fill=frame, width=4)
        p.line([(cx - eye_dx + 17, eye_y - 2), (cx + eye_dx - 17, eye_y - 2)], fill=frame, width=4)

    # hat on top of everything
    p.part = "hat"
    if on("Wearing_Hat"):
        hat = tuple(int(v) for v in rng.integers(20, 235, size=3))
        if rng.random() < 0.5:  # brimmed hat
            p.polygon([(cx - 48, cy - 50), (cx - 42, cy - 112), (cx + 42, cy - 112), (cx + 48, cy - 50)], hat)
            p.ellipse(cx, cy - 50, rx + 32, 11, fill=_shade(hat, 0.8))
        else:  # beanie
            p.chord(cx, cy - 46, rx + 6, 60, 180, 360, fill=hat)
            p.polygon(
                [(cx - rx - 6, cy - 54), (cx + rx + 6, cy - 54), (cx + rx + 6, cy - 40), (cx - rx - 6, cy - 40)],
                _shade(hat, 0.75),
            )

    # pose: rotate about the face centre, scale, shift; then composite over the background
    angle = math.radians(rng.uniform(-8, 8))
    scale = rng.uniform(0.9, 1.08)
    dx, dy = rng.uniform(-12, 12) * u, rng.uniform(-6, 10) * u
    c, s = math.cos(angle) / scale, math.sin(angle) / scale
    ox, oy = cx * u, cy * u  # output pixel (x, y) samples the layer at R^-1 (x - o - d) + o
    a, b = c, s
    d, e = -s, c
    tx = ox - a * (ox + dx) - b * (oy + dy)
    ty = oy - d * (ox + dx) - e * (oy + dy)
    posed = layer.transform((canvas, canvas), Image.Transform.AFFINE, (a, b, tx, d, e, ty), Image.Resampling.BICUBIC)
    image = Image.new("RGB", (canvas, canvas), background)
    image.paste(posed, (0, 0), posed)

    # lighting gradient, downsample, noise
    pixels = np.asarray(image, dtype=np.float32)
    direction = rng.uniform(0, 2 * math.pi)
    ramp = np.linspace(-1, 1, canvas, dtype=np.float32)
    gradient = math.cos(direction) * ramp[None, :] + math.sin(direction) * ramp[:, None]
    pixels *= (1.0 + rng.uniform(0.05, 0.18) * gradient)[..., None]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(0.5, 3.0), (size, size, 3))
    image = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))
    if not parts:
        return image
    # the part map posed as the picture (nearest neighbour: labels do not blend), background where nothing is
    posed_labels = labels.transform(
        (canvas, canvas), Image.Transform.AFFINE, (a, b, tx, d, e, ty), Image.Resampling.NEAREST
    )
    part_map = Image.new("L", (canvas, canvas), 0)
    part_map.paste(posed_labels, (0, 0), posed.getchannel("A").point(lambda v: 255 if v >= 128 else 0))
    return image, part_map.resize((size, size), Image.Resampling.NEAREST)


def make_sample(seed: int, index: int, size: int, parts: bool = False):
    """Image, attributes and 10 captions of sample `index`: a pure function of (seed, index, size); with
    `parts`, its part map too (an "L" image whose value k marks PARTS[k], 0 the background)."""
    rng = np.random.default_rng([seed, index])
    attrs = sample_attributes(rng)
    image = render_face(attrs, rng, size, parts)
    captions = write_captions(attrs, rng, 10)
    return (*image, attrs, captions) if parts else (image, attrs, captions)


def _write_one(job: tuple[Path, int, int, int, bool]) -> list[int]:
    out, seed, index, size, parts = job
    if parts:
        image, part_map, attrs, captions = make_sample(seed, index, size, parts=True)
        part_map.save(out / PARTS_FOLDER / f"{index}.png", optimize=False)
    else:
        image, attrs, captions = make_sample(seed, index, size)
    image.save(out / "CelebA-HQ-img" / f"{index}.png", optimize=False)
    (out / "celeba-caption" / f"{index}.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
    return [attrs[name] for name in CELEBA_ATTRIBUTES]


def write_attribute_file(path: Path, rows: dict[str, list[int]]) -> None:
    """The CelebAMask-HQ-attribute-anno.txt format: count, names, then '<file> ' + 40 values of 1/-1."""
    lines = [str(len(rows)), " ".join(CELEBA_ATTRIBUTES)]
    lines += [f"{name} " + " ".join(str(v) for v in values) for name, values in rows.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def synthesize_dataset(
    out: str | Path, n: int, size: int = 64, seed: int = 0, workers: int | None = None, parts: bool = False
) -> Path:
    """Write n captioned faces in the MM-CelebA-HQ layout under `out`; returns `out`. With `parts`, also each
    face's part map in OUT/CelebAMask-HQ-parts/<index>.png (values: PARTS, listed in parts.json there)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    out = Path(out)
    (out / "CelebA-HQ-img").mkdir(parents=True, exist_ok=True)
    (out / "celeba-caption").mkdir(parents=True, exist_ok=True)
    if parts:
        (out / PARTS_FOLDER).mkdir(exist_ok=True)
        (out / PARTS_FOLDER / "parts.json").write_text(json.dumps(dict(enumerate(PARTS)), indent=1))
    jobs = [(out, seed, i, size, parts) for i in range(n)]
    workers = workers or min(os.cpu_count() or 1, 8)
    rows: dict[str, list[int]] = {}
    progress = tqdm(total=n, desc="synth", unit="img")
    if workers == 1:
        results = map(_write_one, jobs)
    else:
        pool = ProcessPoolExecutor(workers)
        results = pool.map(_write_one, jobs, chunksize=64)
    for i, values in enumerate(results):
        rows[f"{i}.png"] = values
        progress.update()
    progress.close()
    if workers != 1:
        pool.shutdown()
    write_attribute_file(out / "CelebAMask-HQ-attribute-anno.txt", rows)
    (out / SYNTH_RECORD).write_text(json.dumps(synth_parameters(n, size, seed, parts)))  # written last: complete
    return out


SYNTH_RECORD = "synth.json"


def synth_parameters(n: int, size: int, seed: int, parts: bool) -> dict:
    return {"n": n, "size": size, "seed": seed, "parts": parts}


def is_synthesized(out: str | Path, n: int, size: int = 64, seed: int = 0, parts: bool = False) -> bool:
    """Whether `out` holds a complete synthesize_dataset(out, n, size, seed, parts), so a re-run can keep it."""
    record = Path(out) / SYNTH_RECORD
    try:
        return json.loads(record.read_text()) == synth_parameters(n, size, seed, parts)
    except (OSError, ValueError):
        return False
