"""`t2i eval rephrasing`: does the model follow a prompt written in other words than its training captions?

The same attribute combinations, asked three ways, with the same seeds:
    template    the suite's prompts, in the dataset's caption templates and words (as `t2i eval alignment`)
    held-out    the same attributes in sentence shapes that no caption is written in (HELD_OUT_SHAPES)
    synonyms    the template prompt with each phrase in a rarer word no caption uses (captions.RARE_PHRASES)
and scored by the classifier like alignment, beside the real-image ceiling. For your own data, `--prompts FILE`
gives JSONL lines {"prompt": ..., "rephrasing": ..., "attributes": {...}} and reports the two side by side.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from t2i.config import saved_split_fractions
from t2i.data.captions import PHRASES, attributes_in_caption, in_rare_words, join_list
from t2i.eval.alignment import (
    PromptCase,
    Suite,
    check_scorable,
    generate_for_suite,
    load_real_images,
    read_prompt_lines,
    real_ceiling,
    summarize,
)
from t2i.eval.classifier import load_classifier

NOUNS = {1: ("man", "guy", "gentleman"), -1: ("woman", "lady", "girl")}


def _groups(attributes: dict[str, int]) -> dict[str, list[str]]:
    """The present attributes' canonical phrases, by verb kind ("has", "is", "wears")."""
    groups: dict[str, list[str]] = {"has": [], "is": [], "wears": []}
    for attribute, value in attributes.items():
        if value == 1 and attribute in PHRASES:
            kind, phrases = PHRASES[attribute]
            groups[kind].append(phrases[0])
    return groups


def _portrait(groups, noun, rng) -> str:  # "A young, smiling woman with bangs and a goatee, wearing a hat."
    adjectives = ", ".join(groups["is"])
    text = f"A {adjectives + ' ' if adjectives else ''}{noun}"
    text = ("An" + text[1:]) if re.match(r"A [aeiou]", text) else text
    if groups["has"]:
        text += f" with {join_list(groups['has'], rng)}"
    if groups["wears"]:
        text += f", wearing {join_list(groups['wears'], rng)}"
    return text + "."


def _photo_of(groups, noun, rng) -> str:  # "Photo of a woman who wears a hat and is young; she has bangs."
    pronoun = "he" if noun in NOUNS[1] else "she"
    clauses = []
    if groups["wears"]:
        clauses.append(f"wears {join_list(groups['wears'], rng)}")
    if groups["is"]:
        clauses.append(f"is {join_list(groups['is'], rng)}")
    text = f"Photo of a {noun}" + (f" who {' and '.join(clauses)}" if clauses else "")
    if groups["has"]:
        text += f"; {pronoun} has {join_list(groups['has'], rng)}"
    return text + "."


def _fields(groups, noun, rng) -> str:  # "Woman. Features: bangs, a goatee. Looks: young. Accessories: a hat."
    parts = [noun.capitalize() + "."]
    for label, kind in (("Features", "has"), ("Looks", "is"), ("Accessories", "wears")):
        if groups[kind]:
            parts.append(f"{label}: {', '.join(groups[kind])}.")
    return " ".join(parts)


HELD_OUT_SHAPES = (_portrait, _photo_of, _fields)  # sentence shapes no caption is written in


def rephrase(attributes: dict[str, int], rng: np.random.Generator, shape: int) -> str:
    """The present attributes and the sex in held-out sentence shape `shape`, in the dataset's words."""
    noun = NOUNS[attributes.get("Male", -1)][rng.integers(3)]
    return HELD_OUT_SHAPES[shape % len(HELD_OUT_SHAPES)](_groups(attributes), noun, rng)


def rephrased_suites(cases: list[PromptCase], seed: int = 0) -> dict[str, list[PromptCase]]:
    """The suite as its template prompts, in held-out shapes (cycled) and with rarer words; each rephrasing
    asserts exactly what its template prompt asserts (checked)."""
    rng = np.random.default_rng([seed, 23])
    suites = {"template": cases, "held_out_shapes": [], "synonyms": []}
    for k, case in enumerate(cases):
        for name, prompt in (
            ("held_out_shapes", rephrase(case.attributes, rng, k)),
            ("synonyms", in_rare_words(case.prompt)),
        ):
            if attributes_in_caption(prompt) != case.attributes:
                raise AssertionError(f"{prompt!r} asserts {attributes_in_caption(prompt)}, not {case.attributes}")
            suites[name].append(PromptCase(prompt, case.attributes, case.held_out))
    return suites


def read_rephrasing_pairs(path: str | Path) -> dict[str, list[PromptCase]]:
    """JSONL lines {"prompt": ..., "rephrasing": ..., "attributes": {"Eyeglasses": 1, ...}} (attributes: optional,
    then read from the prompt with the dataset's phrase table; "held_out": optional, a combination training never
    saw) as two suites, "prompt" and "rephrasing"."""
    suites: dict[str, list[PromptCase]] = {"prompt": [], "rephrasing": []}
    for number, entry, attributes in read_prompt_lines(path, ("prompt", "rephrasing")):
        if not attributes:
            raise ValueError(f"{path}:{number}: no attributes given or read from the prompt: nothing to score")
        held_out = entry.get("held_out")
        suites["prompt"].append(PromptCase(entry["prompt"], attributes, held_out))
        suites["rephrasing"].append(PromptCase(entry["rephrasing"], attributes, held_out))
    return suites


def measure_rephrasing(suite: Suite) -> dict:
    """Alignment of each suite (the same seeds for the same case in every suite; overall and per attribute), the
    gap of each to the first suite, and the real test images' ceiling; writes OUT/rephrasing.json."""
    from t2i.families import load_pipeline

    pipe = load_pipeline(suite.model_dir)
    classifier = load_classifier(suite.classifier_dir)
    fractions = saved_split_fractions(suite.model_dir)
    if suite.prompts_file:
        suites = read_rephrasing_pairs(suite.prompts_file)
        check_scorable(suites["prompt"], classifier, suite.prompts_file)
    else:
        suites = rephrased_suites(suite.default_cases(classifier.attributes, fractions), suite.seed)
    n, seed = suite.n_per_prompt, suite.seed
    result = {"suites": {}, "seen": {}, "held_out": {}, "per_attribute": {}}
    result["examples"] = {name: [c.prompt for c in cases[:3]] for name, cases in suites.items()}
    with tqdm(total=sum(len(s) for s in suites.values()) * n, desc="generate") as bar:
        for name, cases in suites.items():
            images = generate_for_suite(pipe, cases, n, pipe.defaults, seed, progress=bar.update)
            predicted, _ = classifier.predict(images)
            summary = summarize(cases, n, predicted, classifier.attributes)
            result["suites"][name], result["per_attribute"][name] = summary["alignment"], summary["per_attribute"]
            for part in ("seen", "held_out"):
                if part in summary:
                    result[part][name] = summary[part]
    first = next(iter(result["suites"].values()))
    result["gap"] = {name: first - value for name, value in result["suites"].items()}
    real = load_real_images(suite.data_dir, pipe.image_size, n_train=1, seed=seed, split_fractions=fractions)
    real_values, _ = classifier.predict(real.test_images)
    result["real_ceiling"] = real_ceiling(classifier.attributes, real_values, real.test_claims)["alignment"]
    result |= {"model": str(suite.model_dir), "prompts": len(next(iter(suites.values()))), "n_per_prompt": n}
    out = Path(suite.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rephrasing.json").write_text(json.dumps(result, indent=2))
    return result
