"""A small captioned dataset that is not faces, for the README's "train on your own images" walk-through:
N 32x32 images of a coloured shape on the left or the right, as a Hugging Face imagefolder
(images + metadata.jsonl with two captions each). Usage: python docs/examples/make_shapes.py data/shapes 3000
(`t2i data shapes` writes the harder one: two shapes, for the compositional benchmark of docs/rephrasing.md.)
"""

import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from t2i.data.shapes import BACKGROUND, COLOURS, SHAPES, SIZE, draw_shape


def main(out: Path, n: int, seed: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng, rows = random.Random(seed), []
    for i in range(n):
        colour, shape, side = rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.choice(("left", "right"))
        size = rng.randint(9, 13)
        left = rng.randint(1, 15 - size) if side == "left" else rng.randint(17, 31 - size)
        image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
        draw_shape(ImageDraw.Draw(image), shape, colour, left, rng.randint(2, 30 - size), size)
        image.save(out / f"{i:05d}.png")
        rows.append(
            {"file_name": f"{i:05d}.png", "text": [f"a {colour} {shape} on the {side}", f"{side}: {colour} {shape}"]}
        )
    (out / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3000)
