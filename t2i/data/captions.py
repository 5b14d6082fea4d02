"""The attribute <-> phrase table, caption writing in the MM-CelebA-HQ style, and reading a caption back.

One table (`PHRASES`) serves both directions: the synthetic dataset writes captions from it, and
evaluation reads the attributes a prompt asserts with `attributes_in_caption`, so the two can never
disagree about what "a goatee" means.
"""

from __future__ import annotations

import re

import numpy as np

# The 40 CelebA attributes, in the column order of list_attr_celeba.txt / CelebAMask-HQ-attribute-anno.txt.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)

# attribute -> (verb kind, phrases). Kinds: "has" (The man has ...), "is" (She is ...), "wears" (He is wearing ...).
# The first phrase is the canonical one; every phrase is read back to its attribute.
PHRASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Arched_Eyebrows": ("has", ("arched eyebrows",)),
    "Bald": ("is", ("bald",)),
    "Bangs": ("has", ("bangs",)),
    "Big_Lips": ("has", ("big lips", "full lips")),
    "Big_Nose": ("has", ("a big nose", "a large nose")),
    "Black_Hair": ("has", ("black hair",)),
    "Blond_Hair": ("has", ("blond hair", "blonde hair")),
    "Brown_Hair": ("has", ("brown hair",)),
    "Bushy_Eyebrows": ("has", ("bushy eyebrows", "thick eyebrows")),
    "Chubby": ("is", ("chubby",)),
    "Eyeglasses": ("wears", ("eyeglasses", "glasses")),
    "Goatee": ("has", ("a goatee",)),
    "Gray_Hair": ("has", ("gray hair", "grey hair")),
    "Heavy_Makeup": ("wears", ("heavy makeup",)),
    "Mouth_Slightly_Open": ("has", ("mouth slightly open", "a slightly open mouth")),
    "Mustache": ("has", ("a mustache", "a moustache")),
    "Narrow_Eyes": ("has", ("narrow eyes",)),
    "No_Beard": ("has", ("no beard",)),
    "Pale_Skin": ("has", ("pale skin",)),
    "Pointy_Nose": ("has", ("pointy nose", "a pointy nose")),
    "Rosy_Cheeks": ("has", ("rosy cheeks",)),
    "Smiling": ("is", ("smiling",)),
    "Wavy_Hair": ("has", ("wavy hair",)),
    "Wearing_Earrings": ("wears", ("earrings",)),
    "Wearing_Hat": ("wears", ("a hat",)),
    "Wearing_Lipstick": ("wears", ("lipstick",)),
    "Wearing_Necklace": ("wears", ("a necklace",)),
    "Wearing_Necktie": ("wears", ("a necktie", "a tie")),
    "Young": ("is", ("young",)),
}

# Rarer words for the same attributes that captions are never written with (the synthetic dataset's captions and
# the training-time rewrites use PHRASES only): prompts in them test whether a model learnt the meaning rather than
# the dataset's words (`t2i eval rephrasing`). Each keeps its attribute's verb kind, and each is read back.
RARE_PHRASES: dict[str, tuple[str, ...]] = {
    "Arched_Eyebrows": ("curved eyebrows",),
    "Bald": ("bald-headed",),
    "Bangs": ("a fringe",),
    "Big_Lips": ("thick lips",),
    "Big_Nose": ("a prominent nose",),
    "Black_Hair": ("dark hair",),
    "Blond_Hair": ("fair hair",),
    "Brown_Hair": ("chestnut hair",),
    "Bushy_Eyebrows": ("heavy eyebrows",),
    "Chubby": ("plump",),
    "Eyeglasses": ("spectacles",),
    "Goatee": ("a chin beard",),
    "Gray_Hair": ("silver hair",),
    "Heavy_Makeup": ("a lot of makeup",),
    "Mouth_Slightly_Open": ("parted lips",),
    "Narrow_Eyes": ("small eyes",),
    "No_Beard": ("a clean-shaven face",),
    "Pale_Skin": ("fair skin",),
    "Pointy_Nose": ("a sharp nose",),
    "Rosy_Cheeks": ("pink cheeks",),
    "Smiling": ("grinning",),
    "Wavy_Hair": ("curly hair",),
    "Wearing_Earrings": ("ear studs",),
    "Wearing_Hat": ("a cap",),
    "Wearing_Lipstick": ("lip colour",),
    "Wearing_Necklace": ("a pendant",),
    "Wearing_Necktie": ("a cravat",),
    "Young": ("youthful",),
}

# Male is carried by the subject of the caption rather than by a phrase.
SUBJECTS = {
    1: ("This man", "The man", "He", "This gentleman", "The person", "This person"),
    -1: ("This woman", "The woman", "She", "This lady", "The person", "This person"),
}
PRONOUN = {1: "He", -1: "She"}
GENDER_WORDS = {
    1: ("man", "men", "he", "his", "him", "gentleman", "guy", "boy", "male"),
    -1: ("woman", "women", "she", "her", "lady", "girl", "female"),
}
WEAR_VERBS = ("is wearing", "wears")

# One alternation, longest phrase first: at each position the longest phrase wins ("a pointy nose", not
# "pointy nose"), and matches never overlap.
_PHRASE_ATTRIBUTE = {phrase: attr for attr, (_, phrases) in PHRASES.items() for phrase in phrases} | {
    phrase: attr for attr, phrases in RARE_PHRASES.items() for phrase in phrases
}
_PHRASE_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(p) for p in sorted(_PHRASE_ATTRIBUTE, key=len, reverse=True)) + r")\b"
)
# "not smiling", "without glasses", "no hat", "isn't wearing a necktie": the attribute is asserted absent.
_NEGATED_PATTERN = re.compile(
    r"\b(?:not|no|without|never|isn't|doesn't have)\s+(?:wearing\s+|have\s+)?" + _PHRASE_PATTERN.pattern
)


def join_list(items: list[str], rng: np.random.Generator) -> str:
    """'a', 'a and b', 'a, b, and c' (with or without the Oxford comma, as MM-CelebA-HQ varies)."""
    if len(items) == 1:
        return items[0]
    last_sep = ", and " if rng.random() < 0.5 else " and "
    return ", ".join(items[:-1]) + last_sep + items[-1]


def _phrase(attr: str, rng: np.random.Generator) -> str:
    phrases = PHRASES[attr][1]
    return phrases[rng.integers(len(phrases))] if rng.random() < 0.3 else phrases[0]


def write_caption(attributes: dict[str, int], rng: np.random.Generator) -> str:
    """One caption naming a random subset (2-6) of the attributes present, with a random template."""
    present = [a for a in PHRASES if attributes.get(a) == 1]
    k = min(int(rng.integers(2, 7)), len(present))
    chosen = [present[i] for i in rng.permutation(len(present))[:k]]
    groups: dict[str, list[str]] = {"has": [], "is": [], "wears": []}
    for attr in chosen:
        groups[PHRASES[attr][0]].append(_phrase(attr, rng))

    male = attributes.get("Male", -1)
    subject = SUBJECTS[male][rng.integers(len(SUBJECTS[male]))]
    pronoun = PRONOUN[male]
    wear = WEAR_VERBS[rng.integers(len(WEAR_VERBS))]
    clauses = {
        "has": lambda xs: f"has {join_list(xs, rng)}",
        "is": lambda xs: f"is {join_list(xs, rng)}",
        "wears": lambda xs: f"{wear} {join_list(xs, rng)}",
    }
    kinds = [kind for kind in rng.permutation(list(groups)) if groups[kind]]
    template = rng.integers(3)
    sentences = []
    if template == 0 or len(kinds) == 1:  # one sentence per kind: "She has X. She is wearing Y."
        sentences = [clauses[kind](groups[kind]) for kind in kinds]
    elif template == 1:  # two kinds joined: "He is young and has X. He wears Y."
        sentences = [clauses[kinds[0]](groups[kinds[0]]) + " and " + clauses[kinds[1]](groups[kinds[1]])]
        sentences += [clauses[kind](groups[kind]) for kind in kinds[2:]]
    else:  # "The person with X is wearing Y." when a "has" group exists, else all kinds joined
        if "has" in kinds:
            rest = [k for k in kinds if k != "has"]
            noun = subject if subject not in PRONOUN.values() else f"The {'man' if male == 1 else 'woman'}"
            head = f"{noun} with {join_list(groups['has'], rng)}"
            lead = " and ".join(clauses[k](groups[k]) for k in rest)
            return f"{head} {lead}."
        sentences = [" and ".join(clauses[k](groups[k]) for k in kinds)]
    words = [f"{subject} {sentences[0]}."] + [f"{pronoun} {s}." for s in sentences[1:]]
    return " ".join(words)


def write_captions(attributes: dict[str, int], rng: np.random.Generator, n: int = 10) -> list[str]:
    """n captions for one image, all different when the attributes allow it."""
    captions: list[str] = []
    for _ in range(20 * n):
        caption = write_caption(attributes, rng)
        if caption not in captions:
            captions.append(caption)
        if len(captions) == n:
            return captions
    while len(captions) < n:  # very few attributes present: repeat rather than write fewer lines
        captions.append(captions[len(captions) % max(1, len(captions))])
    return captions


def in_rare_words(caption: str) -> str:
    """The caption with each phrase that has a rarer synonym (RARE_PHRASES) written in it: "glasses" → "spectacles"."""

    def rarer(match: re.Match) -> str:
        attribute = _PHRASE_ATTRIBUTE[match.group(1).lower()]
        return RARE_PHRASES[attribute][0] if attribute in RARE_PHRASES else match.group(1)

    return re.sub(_PHRASE_PATTERN.pattern, rarer, caption, flags=re.IGNORECASE)


def attributes_in_caption(caption: str) -> dict[str, int]:
    """The attributes a caption asserts: +1 for each phrase found, −1 for a negated one ("not smiling",
    "without glasses"; "no beard" is itself the No_Beard phrase), Male from the subject's gender words."""
    text = caption.lower().replace("’", "'")
    found = {_PHRASE_ATTRIBUTE[m.group(1)]: -1 for m in _NEGATED_PATTERN.finditer(text)}
    text = _NEGATED_PATTERN.sub(" ", text)
    found |= {_PHRASE_ATTRIBUTE[m.group(1)]: 1 for m in _PHRASE_PATTERN.finditer(text)}
    words = set(re.findall(r"[a-z]+", _PHRASE_PATTERN.sub(" ", text)))
    for value, gender_words in GENDER_WORDS.items():
        if words & set(gender_words):
            found["Male"] = value
    return found
