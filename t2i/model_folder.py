"""What a saved model folder must hold, checked before any library loads it, so that a missing, truncated
or damaged file (weights that are NaN or infinite included: they draw black images) is one clear error naming it
rather than a traceback from deep inside diffusers."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from t2i.hub import local_folder


def check_model_folder(folder: str | Path, files: list[str], what: str = "model folder") -> Path:
    """Each of `files` (relative to `folder`, which may be a Hub id: t2i.hub) exists; .json files parse; .safetensors
    files read, every value finite. Returns the local folder."""
    folder = local_folder(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} not found: {folder}")
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not a complete {what} (missing {', '.join(missing)})")
    for name in files:
        path, not_finite = folder / name, None
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix == ".safetensors":
                with safe_open(path, "pt") as f:
                    not_finite = next((key for key in f.keys() if not _finite(f.get_tensor(key))), None)
        except Exception as error:  # JSON, Unicode and safetensors' own error types
            raise ValueError(f"{folder}: damaged {what}: {name} cannot be read ({error})") from None
        if not_finite:
            raise ValueError(f"{folder}: damaged {what}: {name} holds NaN or infinite weights (in {not_finite})")
    return folder


def _finite(tensor: torch.Tensor) -> bool:
    return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())


def load_diffusers_model(cls, folder: Path, what: str):
    """`cls.from_pretrained(folder)` in float32 from safetensors; a weights file that lacks a key of the config's
    model (or holds one of another shape) is a ValueError naming it, not a half-random model."""
    model, info = cls.from_pretrained(folder, use_safetensors=True, torch_dtype=torch.float32, output_loading_info=True)
    wrong = [*info["missing_keys"], *(str(key) for key in info["mismatched_keys"])]
    if wrong:
        raise ValueError(f"{folder}: damaged {what}: its weights file does not fit its config.json ({wrong[:3]})")
    return model
