"""`t2i eval attention`: do the words of a prompt attend to their part of the face?

Needs a synthetic dataset written with part maps (`t2i data synth --parts`). For held-out images, the model
redraws each image from its first caption at `strength` (image-to-image, so that the picture keeps the real
image's layout, whose parts are known) and returns its attention maps; each word that names a part (hair
colours, "hair", "bangs" → hair; "eyeglasses" → eyeglasses; "hat"; "smiling", "lips", "lipstick" → mouth; ...)
is scored by the share of its map's mass inside that part (its word pieces' maps averaged). The floor is the
part's share of the image: what a map spread evenly would score.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from t2i.data.datasets import ImageCaptionDataset
from t2i.data.synthetic import PARTS, PARTS_FOLDER
from t2i.eval.alignment import saved_split_fractions

WORD_PARTS = {
    **dict.fromkeys(["hair", "bangs", "wavy", "blond", "blonde", "brown", "gray", "grey"], "hair"),
    **dict.fromkeys(["eyeglasses", "glasses", "spectacles"], "eyeglasses"),
    **dict.fromkeys(["hat", "cap"], "hat"),
    **dict.fromkeys(["smiling", "smile", "lips", "lipstick", "mouth"], "mouth"),
    **dict.fromkeys(["goatee", "mustache", "moustache", "beard"], "beard"),
    **dict.fromkeys(["eyebrows", "brows"], "eyebrows"),
    **dict.fromkeys(["nose"], "nose"),
    **dict.fromkeys(["earrings"], "earrings"),
    **dict.fromkeys(["necklace"], "necklace"),
}


def words(tokens: list[str], maps: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Word pieces joined into words ("eye", "##glass", "##es" → "eyeglasses"), each with its pieces' mean map."""
    out: list[tuple[str, list[torch.Tensor]]] = []
    for token, m in zip(tokens, maps, strict=True):
        if token.startswith("##") and out:
            out[-1] = (out[-1][0] + token[2:], out[-1][1] + [m])
        else:
            out.append((token, [m]))
    return [(w, torch.stack(ms).mean(0)) for w, ms in out]


def measure_attention_placement(model_dir, data_dir, out, n_images=64, strength=0.5, seed=0) -> dict:
    """Per part: how much of its words' attention lies inside it, against the part's share of the image; writes
    OUT/attention_placement.json."""
    from t2i.families import load_pipeline

    pipe = load_pipeline(model_dir)
    if not pipe.takes_edits:
        raise ValueError(f"{model_dir}: a {pipe.family} model; attention maps come from a diffusion model")
    parts_dir = Path(data_dir) / PARTS_FOLDER
    if not parts_dir.is_dir():
        raise ValueError(f"{data_dir}: no {PARTS_FOLDER}/ (write the dataset with `t2i data synth --parts`)")
    fractions = saved_split_fractions(model_dir)
    data = ImageCaptionDataset(data_dir, pipe.image_size, split="test", random_caption=False, split_fractions=fractions)
    inside, floor, count = defaultdict(float), defaultdict(float), defaultdict(int)
    for k in range(min(n_images, len(data))):
        item = data.item(k, 0)
        with Image.open(parts_dir / f"{item['id']}.png") as part_map:  # at the model's size, labels unblended
            labels = np.asarray(part_map.resize((pipe.image_size,) * 2, Image.Resampling.NEAREST))
        _, maps = pipe(
            item["caption"], image=item["pixel_values"][None], strength=strength, seed=seed + k, return_attention=True
        )
        for word, m in words(maps[0].tokens, maps[0].maps):
            part = WORD_PARTS.get(word)
            mask = torch.from_numpy(labels == PARTS.index(part)) if part else None
            if mask is None or not mask.any():
                continue  # a word of no part, or a part this face does not show
            inside[part] += float(m[mask].sum() / m.sum())
            floor[part] += float(mask.float().mean())
            count[part] += 1
    result = {
        part: {
            "words": count[part],
            "share_inside": inside[part] / count[part],
            "floor": floor[part] / count[part],
            "ratio": inside[part] / floor[part],  # how many times the even spread's share
        }
        for part in sorted(count)
    }
    result = {"strength": strength, "images": min(n_images, len(data)), "parts": result}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "attention_placement.json").write_text(json.dumps(result, indent=2))
    return result
