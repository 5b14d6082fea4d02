"""`t2i eval word-swap`: do one-word edits change the word's attribute and keep the rest of the face?

For every prompt of the evaluation suite that names a hair colour, the colour word is swapped for another
("blond hair" → "black hair"), and each seed gives the source image, its word-swapped edit
(`source_prompt=`, prompt-to-prompt) and, as the baseline, the edited prompt drawn alone from the same seed.
The classifier (evaluation's referee) then says, per image:
    changed   the new colour is found in the edit
    kept      each other attribute the source prompt asserts is predicted as it is on the source image
    distance  ‖f(edit) − f(source)‖ in the classifier's features (and the mean pixel difference), against two
              seeds of the source prompt; and ‖P(f(edit) − f(source))‖ with P the projection away from what
              the hair-colour logits read, the face without the attribute the edit is meant to change
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from t2i.eval.alignment import default_suite, saved_split_fractions
from t2i.eval.classifier import load_classifier
from t2i.grid import make_grid, to_pil
from t2i.settings import SWAP_STEPS

HAIR = {"Black_Hair": "black", "Blond_Hair": "blond", "Brown_Hair": "brown", "Gray_Hair": "gray"}
COLOUR_WORD = re.compile(r"\b(black|blonde?|brown|gr[ae]y)(?= hair)")


def swapped(prompt: str, attributes: dict[str, int]) -> tuple[str, str] | None:
    """(edited prompt, the new colour's attribute) for a prompt naming one hair colour; the next colour in
    HAIR's order replaces it. None: no single hair colour to swap."""
    named = [a for a in HAIR if attributes.get(a) == 1]
    if len(named) != 1 or len(COLOUR_WORD.findall(prompt)) != 1:
        return None
    colours = list(HAIR)
    new = colours[(colours.index(named[0]) + 1) % len(colours)]
    return COLOUR_WORD.sub(HAIR[new], prompt), new


def outside(weights: torch.Tensor) -> torch.Tensor:
    """The projection P = I − W⁺W onto the features that the logits with weight rows W (k, F) do not read:
    W·P·f = 0 for every f, so a difference along those logits does not count in ‖P·Δf‖."""
    return torch.eye(weights.shape[1]) - torch.linalg.pinv(weights) @ weights


def measure_word_swaps(
    model_dir,
    classifier_dir,
    data_dir,
    out,
    n_prompts=64,
    n_per_prompt=4,
    seed=0,
    swap_steps=SWAP_STEPS,
    self_swap_steps=0.0,
    local_blend=False,
    settings: dict | None = None,
) -> dict:
    """The word-swap scores of a diffusion model on the suite's hair-colour prompts (at its default sampling
    settings, or those in `settings`); writes OUT/word_swap.json and OUT/word_swap.png (source, edit, baseline
    for the first 8)."""
    from t2i.families import load_pipeline

    pipe = load_pipeline(model_dir)
    if not hasattr(pipe, "mixed_precision"):
        raise ValueError(f"{model_dir}: a {pipe.family} model; word swaps take a diffusion model")
    sampling = pipe.defaults.override(**(settings or {}))
    classifier = load_classifier(classifier_dir)
    fractions = saved_split_fractions(model_dir)  # prompts of images the model did not train on
    cases = default_suite(data_dir, n_prompts, seed=seed, scorable=classifier.attributes, split_fractions=fractions)
    edits = [(c, *s) for c in cases if (s := swapped(c.prompt, c.attributes))]
    if not edits:
        raise ValueError("no prompt of the suite names a single hair colour: nothing to swap")
    index = classifier.attributes.index
    counts = {"changed": 0, "kept": 0, "others": 0, "baseline_changed": 0, "baseline_kept": 0}
    # to the source, for the edit, the edited prompt alone and a second seed: classifier features, the same
    # outside the hair-colour logits' directions, pixels
    distances, hair_blind, pixels = ({"edit": [], "baseline": [], "two_seeds": []} for _ in range(3))
    not_hair = outside(classifier.head.weight.detach()[[index(a) for a in HAIR]])
    examples, by_attribute = [], {}  # attribute -> how many of each prompt's n_per_prompt edits kept it
    for case, target, new in edits:
        run = {"seed": seed, "num_images_per_prompt": n_per_prompt, "output_type": "pt", "settings": sampling}
        source = pipe(case.prompt, **run).clamp(-1, 1)
        swap = {"source_prompt": case.prompt, "swap_steps": swap_steps, "self_swap_steps": self_swap_steps,
                "local_blend": local_blend}  # fmt: skip
        edit = pipe(target, **swap, **run).clamp(-1, 1)
        baseline = pipe(target, **run).clamp(-1, 1)
        other = pipe(case.prompt, **run | {"seed": seed + 1000}).clamp(-1, 1)
        (vs, fs), (ve, fe), (vb, fb), (_, fo) = (classifier.predict(x) for x in (source, edit, baseline, other))
        others = [a for a in case.attributes if a in classifier.attributes and a not in HAIR]
        counts["changed"] += int((ve[:, index(new)] == 1).sum())
        counts["baseline_changed"] += int((vb[:, index(new)] == 1).sum())
        for a in others:
            kept = int((ve[:, index(a)] == vs[:, index(a)]).sum())
            counts["kept"] += kept
            by_attribute.setdefault(a, []).append(kept)
            counts["baseline_kept"] += int((vb[:, index(a)] == vs[:, index(a)]).sum())
        counts["others"] += len(others) * n_per_prompt
        for name, f, x in (("edit", fe, edit), ("baseline", fb, baseline), ("two_seeds", fo, other)):
            distances[name] += (f - fs).norm(dim=1).tolist()
            hair_blind[name] += ((f - fs) @ not_hair).norm(dim=1).tolist()
            pixels[name] += (x - source).abs().mean((1, 2, 3)).tolist()
        if len(examples) < 8:
            examples.append((case.prompt, target, source[0], edit[0], baseline[0]))
    images = len(edits) * n_per_prompt
    result = {
        "prompts": len(edits),
        "images": images,
        "changed": counts["changed"] / images,
        "kept": counts["kept"] / max(counts["others"], 1),
        "baseline_changed": counts["baseline_changed"] / images,
        "baseline_kept": counts["baseline_kept"] / max(counts["others"], 1),
        "kept_by_attribute": {a: sum(k) / (len(k) * n_per_prompt) for a, k in sorted(by_attribute.items())},
        "feature_distance": {k: sum(v) / len(v) for k, v in distances.items()},
        "feature_distance_outside_hair": {k: sum(v) / len(v) for k, v in hair_blind.items()},
        "pixel_distance": {k: sum(v) / len(v) for k, v in pixels.items()},
        "settings": {
            "steps": sampling.steps,
            "guidance": sampling.guidance,
            "swap_steps": swap_steps,
            "self_swap_steps": self_swap_steps,
            "local_blend": local_blend,
        },  # fmt: skip
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "word_swap.json").write_text(json.dumps(result, indent=2))
    cells, labels = [], []
    for prompt, target, *row in examples:
        cells += to_pil(torch.stack(row))
        labels += [prompt, f"swap: {target}", f"alone: {target}"]
    make_grid(cells, labels, cols=3, cell=160).save(out / "word_swap.png")
    return result
