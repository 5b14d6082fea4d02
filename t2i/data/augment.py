"""Training-time caption rewrites: the same content in another order and other words, so that a model learns what
a caption says rather than where its words sit in a dataset's few templates.

    clauses   the caption's sentences (and ';'-separated clauses) in another order
    phrases   inside each sentence, its phrases (the parts between commas, semicolons and "and") in another order,
              joined by another of ", ", " and ", "; ": each modifier stays with its noun, the order changes
    filler    each filler word ("this", "the", "is", "has", ...) dropped with a probability; never a negation,
              never a word that says who it is ("he", "woman", ...)
    faces     a caption of the synthetic faces' phrase table rewritten in other sentence shapes, with any of each
              attribute's phrases (never captions.RARE_PHRASES nor the evaluation's held-out shapes: those stay
              unseen, for `t2i eval rephrasing`)

A caption's rewrites are a pure function of (caption, k, seed), so the text cache encodes each once and a run
that resumes draws the same ones.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from t2i.config import CaptionAugmentConfig
from t2i.data.captions import PHRASES, attributes_in_caption, join_list

FILLER = frozenset("this the a an is are has have and with wears wearing who that which also very".split())
# (never a preposition: "on the left" and "on the right" differ in one; articles go too: "hat" is still a hat)
NOUNS = {1: ("man", "gentleman"), -1: ("woman", "lady")}


def _clauses(caption: str) -> list[str]:
    return [c for c in re.split(r"(?<=[.!?;])\s+", caption.strip()) if c]


PHRASE_BREAK = re.compile(r"\s*[,;]\s*|\s+and\s+")
JOINERS = (", ", " and ", "; ")


def _shuffle_phrases(sentence: str, rng: np.random.Generator) -> str:
    """A sentence's phrases in a random order with random joiners ("a red circle on the left and a blue square
    on the right" -> "a blue square on the right; a red circle on the left"); its end mark stays at the end."""
    end = sentence[-1] if sentence[-1] in ".!?" else ""
    phrases = [p for p in PHRASE_BREAK.split(sentence[: len(sentence) - len(end)]) if p]
    first, *rest = rng.permutation(len(phrases))
    return phrases[first] + "".join(JOINERS[rng.integers(len(JOINERS))] + phrases[i] for i in rest) + end


def _drop_filler(text: str, p: float, rng: np.random.Generator) -> str:
    words = text.split(" ")
    kept = [w for w in words if w.strip(".,;!?").lower() not in FILLER or rng.random() >= p]
    return " ".join(kept) if kept else text


def _face_shape(attributes: dict[str, int], rng: np.random.Generator) -> str | None:
    """The attributes in one of two sentence shapes of its own, any phrase of each; None when the caption
    asserts something these shapes cannot say (an absence, no sex)."""
    if "Male" not in attributes or any(v != 1 for a, v in attributes.items() if a != "Male"):
        return None
    groups: dict[str, list[str]] = {"has": [], "is": [], "wears": []}
    for attribute in attributes:
        if attribute in PHRASES:
            kind, phrases = PHRASES[attribute]
            groups[kind].append(phrases[rng.integers(len(phrases))])
    for kind in groups:
        groups[kind] = [groups[kind][i] for i in rng.permutation(len(groups[kind]))]
    noun = NOUNS[attributes["Male"]][rng.integers(2)]
    if rng.random() < 0.5:  # "Woman, young and smiling, with bangs, in a hat."
        text = noun.capitalize() + (f", {join_list(groups['is'], rng)}," if groups["is"] else "")
        text += f" with {join_list(groups['has'], rng)}" if groups["has"] else ""
        text += f", in {join_list(groups['wears'], rng)}" if groups["wears"] else ""
        return text.rstrip(",") + "."
    named = groups["has"] + groups["wears"]  # "Bangs and a hat on a smiling woman."
    subject = f"{' '.join(groups['is'])} {noun}".strip()
    if not named:
        return f"Portrait of a {subject}."
    listed = join_list(named, rng)
    return f"{listed[0].upper()}{listed[1:]} on a {subject}."


def rewrite(caption: str, k: int, config: CaptionAugmentConfig, seed: int = 0) -> str:
    """Rewrite number k of a caption (see the module's docstring); "" stays "" (the unconditional input)."""
    if not caption.strip():
        return caption
    digest = int(hashlib.sha1(caption.encode("utf-8")).hexdigest()[:12], 16)
    rng = np.random.default_rng([seed, digest, k])
    if config.face_shapes:
        shaped = _face_shape(attributes_in_caption(caption), rng)
        if shaped is not None:
            caption = shaped
    clauses = _clauses(caption)
    if config.shuffle_clauses:
        clauses = [clauses[i] for i in rng.permutation(len(clauses))]
    if config.shuffle_phrases:
        clauses = [_shuffle_phrases(c, rng) for c in clauses]
    text = " ".join(clauses)
    return _drop_filler(text, config.drop_filler, rng) if config.drop_filler > 0 else text


def with_rewrites(captions: list[str], config: CaptionAugmentConfig, seed: int = 0) -> list[str]:
    """The captions and, after each, its `config.rewrites` rewrites (duplicates removed, order kept)."""
    out = [variant for c in captions for variant in [c, *(rewrite(c, k, config, seed) for k in range(config.rewrites))]]
    return list(dict.fromkeys(out))
