"""Sampling settings: each model family's knobs, with their defaults, ranges and help written once.

A family's settings are a dataclass deriving from `Settings` whose fields are declared with `setting(...)`;
the CLI's overrides, the server's request schema and the web page's controls are all read from it. A model
folder's `sampling.json` replaces the defaults for that model (`t2i eval report --save-defaults` writes it).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

from t2i.config import from_dict

IMAGE_TO_IMAGE_STRENGTH = 0.6  # an edit from an image, by default: 0 keeps the image, 1 ignores it
INPAINTING_STRENGTH = 1.0  # inpainting, by default: the masked part drawn from noise
SWAP_STEPS = 0.8  # a word swap, by default: the share of steps drawn with the source prompt's cross-attention


def uses_guidance(scale: float) -> bool:
    """Every family's rule: guidance is on unless g = 1 (then ε = ε_c, one pass without the unconditional half)."""
    return scale != 1


def guide(unconditional, conditional, scale: float):
    """Classifier-free guidance: ε = ε_u + g (ε_c − ε_u) (or the logits l_u, l_c of a token model)."""
    return unconditional + scale * (conditional - unconditional)


def setting(default, help: str, low: float | None = None, high: float | None = None, choices: tuple = ()):
    """A settings field: its default, a one-line help, and its range (low..high) or its choices."""
    return dataclasses.field(default=default, metadata={"help": help, "low": low, "high": high, "choices": choices})


class Settings:
    FILE = "sampling.json"

    @classmethod
    def of_model(cls, model_dir: str | Path):
        """The model's defaults: its sampling.json over the family's own."""
        path = Path(model_dir) / cls.FILE
        if not path.is_file():
            return cls()
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not JSON ({error})") from None
        try:
            return from_dict(cls, values, str(path)).check()
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    @classmethod
    def describe(cls) -> list[dict]:
        """Each setting's name, type, default, help and range or choices (for the server's schema and the page)."""
        hints = typing.get_type_hints(cls)
        return [
            {"name": f.name, "type": hints[f.name].__name__, "default": f.default} | f.metadata
            for f in dataclasses.fields(cls)
        ]

    def check(self, spelled: dict[str, str] | None = None):
        """These settings, or a ValueError naming the first one out of its range or choices (as `spelled` spells
        its name: a caller's own keyword for it)."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, (low, high, choices) = getattr(self, f.name), (f.metadata[k] for k in ("low", "high", "choices"))
            name = (spelled or {}).get(f.name, f.name)
            if choices and value not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
            whole = hints[f.name] is int
            number = isinstance(value, int if whole else int | float) and not isinstance(value, bool) and value == value
            if low is not None and not (number and low <= value <= high):
                kind = "an integer" if whole and isinstance(value, float) else "a number"
                raise ValueError(f"{name} must be {kind} from {low} to {high}, got {value!r}")
        return self

    def override(self, spelled: dict[str, str] | None = None, **given):
        """These settings with each given one in place (None keeps it); a setting this family lacks is an error.
        `spelled`: the caller's names for the settings, which an error about them uses."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = [name for name, value in given.items() if value is not None and name not in names]
        if unknown:
            raise ValueError(
                f"this model has no setting {', '.join(unknown)} (its settings: {', '.join(names) or 'none'})"
            )
        return dataclasses.replace(self, **{k: v for k, v in given.items() if v is not None}).check(spelled)

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / self.FILE
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        return path
