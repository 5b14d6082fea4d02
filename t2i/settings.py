"""Settings: knobs with their defaults, ranges and help written once (each family's sampling settings, the edit
settings, the server's limits), and the guidance rule every family follows.

A family's settings are a dataclass deriving from `Settings` whose fields are declared with `setting(...)`;
the CLI's flags, the server's request schema and the web page's controls are all generated from it. A model
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
MAX_GUIDANCE = 50.0  # classifier-free guidance scales above this only saturate the image
SWAP_STEPS = 0.8  # a word swap, by default: the share of steps drawn with the source prompt's cross-attention
MAX_PIXELS = 4096 * 4096  # an image to edit, width × height: 48 MB once decoded to RGB
MAX_ASPECT = 4  # ... its long side at most this many times its short side (the short side is resized to the
# model's size before the centre crop: an 8×2,097,152 image would grow to 64×16,777,216)


def uses_guidance(scale: float) -> bool:
    """Every family's rule: guidance is on unless g = 1 (then ε = ε_c, one pass without the unconditional half)."""
    return scale != 1


def guide(unconditional, conditional, scale: float):
    """Classifier-free guidance: ε = ε_u + g (ε_c − ε_u) (or the logits l_u, l_c of a token model)."""
    return unconditional + scale * (conditional - unconditional)


def setting(default, help: str, low=None, high=None, choices: tuple = (), flag: str | None = None):
    """A settings field: its default, a one-line help, its range (low..high) or its choices, and (`flag`) the
    command-line flag's name where it is not the field's."""
    metadata = {"help": help, "low": low, "high": high, "choices": choices} | ({"flag": flag} if flag else {})
    return dataclasses.field(default=default, metadata=metadata)


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


@dataclasses.dataclass
class ServeLimits(Settings):
    """What one `t2i serve` takes from a request (its flags: t2i.cli)."""

    max_steps: int = setting(150, "most sampler steps a request may ask for", 1, 1000)
    max_images: int = setting(8, "most images per request (n)", 1, 64)
    max_prompt_chars: int = setting(1000, "longest prompt (and negative prompt), in characters", 1, 10**5)
    max_queue: int = setting(16, "requests that may wait behind the running one; more get 429", 0, 10**4)
    timeout_s: float = setting(
        120.0, "seconds per request, waiting included (checked at every step)", 0.1, 86400, flag="timeout"
    )
    max_body_bytes: int = setting(64 * 1024, "largest request body; larger ones get 413 unread", 1024, 2**30)
    read_timeout_s: float = setting(
        10.0, "seconds for a request's head, and again for its body, to arrive", 0.1, 3600, flag="read-timeout"
    )
    max_upload_bytes: int = setting(
        4 * 1024 * 1024,
        "largest image (or mask) file /v1/edit takes; its body limit grows by two of them",
        1024,
        2**30,
    )
    max_upload_pixels: int = setting(MAX_PIXELS, "most pixels (width × height) of an uploaded image", 1, 2**31)
    max_upload_aspect: float = setting(
        MAX_ASPECT, "an uploaded image's long side over its short side, at most", 1, 1000
    )

    def body_limit(self, path: str) -> int:
        """The largest body a route takes: /v1/edit's has room for an image and a mask in base64."""
        return self.max_body_bytes + (2 * self.upload_chars if path == "/v1/edit" else 0)

    @property
    def upload_chars(self) -> int:
        """The longest base64 text (or data: URL) of an upload."""
        return 4 * -(-self.max_upload_bytes // 3) + 100
