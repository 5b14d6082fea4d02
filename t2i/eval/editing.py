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
The same scores for the synthetic renderer's own swaps are the yardstick: faces drawn with what each prompt
asserts, each drawn again with only its hair colour changed (the same draws otherwise: a perfect edit), against
a second face of the prompt.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import torch

from t2i.data.synthetic import render_face, sample_attributes
from t2i.eval.alignment import Suite, saved_split_fractions
from t2i.eval.classifier import load_classifier
from t2i.grid import make_grid, pil_tensor, to_pil
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


def rendered_swaps(edits: list, per_prompt: int, seed: int, size: int) -> tuple[torch.Tensor, ...]:
    """(sources, perfect edits, second faces), each (len(edits) · per_prompt, 3, size, size) in [-1, 1]: for each
    (case, edited prompt, new colour), faces the renderer draws with everything the case asserts, the same faces
    with the new hair colour instead of the old (every other draw the same), and other faces of the case."""

    def face(asserted: dict[str, int], rng: np.random.Generator) -> dict[str, int]:
        for _ in range(100_000):  # attributes as the renderer draws them, kept when they agree with the prompt
            attributes = sample_attributes(rng)
            if all(attributes[a] == v for a, v in asserted.items()):
                return attributes
        raise ValueError(f"the renderer draws no face with {asserted}")

    drawn: tuple[list, list, list] = ([], [], [])
    for k, (case, _, new) in enumerate(edits):
        for j in range(per_prompt):
            rng = np.random.default_rng([seed, k, j])
            attributes = face(case.attributes, rng)
            old = next(a for a in HAIR if attributes[a] == 1)
            edited = attributes | {old: -1, new: 1}
            drawn[0].append(pil_tensor(render_face(attributes, copy.deepcopy(rng), size), size) * 2 - 1)
            drawn[1].append(pil_tensor(render_face(edited, rng, size), size) * 2 - 1)  # the same draws as the source's
            drawn[2].append(pil_tensor(render_face(face(case.attributes, rng), rng, size), size) * 2 - 1)
    return tuple(torch.stack(images) for images in drawn)


def swap_scores(classifier, edits: list, per_prompt: int, source, edit, references: dict) -> dict:
    """The classifier's scores of edits (`per_prompt` images of each of `edits` in order, as `source`): the new
    colour found, each other asserted attribute as on the source (overall and per attribute), and the distances
    to the source of the edit and of each reference image set (features, features outside the hair-colour logits'
    directions, pixels)."""
    index = classifier.attributes.index
    (vs, fs), (ve, fe) = classifier.predict(source), classifier.predict(edit)
    features = {"edit": fe} | {name: classifier.predict(x)[1] for name, x in references.items()}
    pixels = {"edit": edit} | references
    new = torch.tensor([index(attribute) for _, _, attribute in edits]).repeat_interleave(per_prompt)
    by_attribute: dict[str, list[float]] = {}  # attribute -> per image: kept it or not
    for k, (case, _, _) in enumerate(edits):
        rows = slice(k * per_prompt, (k + 1) * per_prompt)
        for a in case.attributes:
            if a in classifier.attributes and a not in HAIR:
                by_attribute.setdefault(a, []).extend((ve[rows, index(a)] == vs[rows, index(a)]).tolist())
    not_hair = outside(classifier.head.weight.detach()[[index(a) for a in HAIR]])
    everything = [kept for values in by_attribute.values() for kept in values]
    return {
        "changed": (ve.gather(1, new[:, None]) == 1).float().mean().item(),
        "kept": sum(everything) / max(len(everything), 1),
        "kept_by_attribute": {a: sum(v) / len(v) for a, v in sorted(by_attribute.items())},
        "feature_distance": {name: (f - fs).norm(dim=1).mean().item() for name, f in features.items()},
        "feature_distance_outside_hair": {
            name: ((f - fs) @ not_hair).norm(dim=1).mean().item() for name, f in features.items()
        },
        "pixel_distance": {name: (x - source).abs().mean((1, 2, 3)).mean().item() for name, x in pixels.items()},
    }


def _draw_swaps(pipe, edits, swap: dict, run: dict):
    """Per prompt: the source, its word-swapped edit (`swap`'s settings), the edited prompt alone and a second seed
    of the source, each `run`'s images; (those four, concatenated over the prompts; the first 8 as examples)."""
    seed = run["seed"]
    drawn: dict[str, list[torch.Tensor]] = {"source": [], "edit": [], "baseline": [], "two_seeds": []}
    examples = []
    for case, target, _ in edits:
        source = pipe(case.prompt, **run).clamp(-1, 1)
        edit = pipe(target, source_prompt=case.prompt, **swap, **run).clamp(-1, 1)
        baseline = pipe(target, **run).clamp(-1, 1)
        other = pipe(case.prompt, **run | {"seed": seed + 1000}).clamp(-1, 1)
        for images, x in zip(drawn.values(), (source, edit, baseline, other), strict=True):
            images.append(x)
        if len(examples) < 8:
            examples.append((case.prompt, target, source[0], edit[0], baseline[0]))
    return {name: torch.cat(x) for name, x in drawn.items()}, examples


def measure_word_swaps(
    suite: Suite,
    *,
    swap_steps=SWAP_STEPS,
    self_swap_steps=0.0,
    local_blend=False,
    settings: dict | None = None,
) -> dict:
    """The word-swap scores of a diffusion model on the suite's hair-colour prompts (at its default sampling
    settings, or those in `settings`); writes OUT/word_swap.json and OUT/word_swap.png (source, edit, baseline
    for the first 8)."""
    from t2i.families import load_pipeline

    model_dir, n_per_prompt, seed = suite.model_dir, suite.n_per_prompt, suite.seed
    pipe = load_pipeline(model_dir)
    if not pipe.takes_edits:
        raise ValueError(f"{model_dir}: a {pipe.family} model; word swaps take a diffusion model")
    sampling = pipe.defaults.override(**(settings or {}))
    classifier = load_classifier(suite.classifier_dir)
    fractions = saved_split_fractions(model_dir)  # prompts of images the model did not train on
    cases = suite.default_cases(classifier.attributes, fractions)
    edits = [(c, *s) for c in cases if (s := swapped(c.prompt, c.attributes))]
    if not edits:
        raise ValueError("no prompt of the suite names a single hair colour: nothing to swap")
    swap = {"swap_steps": swap_steps, "self_swap_steps": self_swap_steps, "local_blend": local_blend}
    run = {"seed": seed, "num_images_per_prompt": n_per_prompt, "output_type": "pt", "settings": sampling}
    model, examples = _draw_swaps(pipe, edits, swap, run)
    references = {"baseline": model["baseline"], "two_seeds": model["two_seeds"]}
    scores = swap_scores(classifier, edits, n_per_prompt, model["source"], model["edit"], references)
    alone = swap_scores(classifier, edits, n_per_prompt, model["source"], model["baseline"], {})
    source, edit, other = rendered_swaps(edits, n_per_prompt, seed, pipe.image_size)
    rendered = swap_scores(classifier, edits, n_per_prompt, source, edit, {"two_faces": other})
    result = {
        "prompts": len(edits),
        "images": len(edits) * n_per_prompt,
        "changed": scores.pop("changed"),
        "kept": scores.pop("kept"),
        "baseline_changed": alone["changed"],
        "baseline_kept": alone["kept"],
        **scores,
        "rendered": rendered,
        "settings": {"steps": sampling.steps, "guidance": sampling.guidance} | swap,
    }
    out = Path(suite.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "word_swap.json").write_text(json.dumps(result, indent=2))
    cells, labels = [], []
    for prompt, target, *row in examples:
        cells += to_pil(torch.stack(row))
        labels += [prompt, f"swap: {target}", f"alone: {target}"]
    make_grid(cells, labels, cols=3, cell=160).save(out / "word_swap.png")
    return result
