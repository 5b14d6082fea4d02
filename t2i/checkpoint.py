"""Training checkpoints: atomic, verified, safetensors only; resume that survives a corrupt one; a clean Ctrl-C.

A checkpoint is a folder `step-NNNNNNN/` holding `tensors.safetensors` (every tensor of the training
state) and `state.json` (the rest of the state with tensors replaced by their keys, plus the sha256
of the tensor file). It is written under a temporary name and renamed into place, so a kill at any
moment leaves either the old latest checkpoint or the new one, never a half-written one.
Resuming takes the newest checkpoint that verifies: a corrupt one is set aside (renamed
`corrupt-step-NNNNNNN`, never deleted) and the one before it is used. During training, the first Ctrl-C
asks the loop to stop after the current step and write a checkpoint; a second one stops at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import threading
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

PREFIX = "step-"
log = logging.getLogger(__name__)


def _flatten(obj, tensors: dict[str, torch.Tensor], path: str):
    """Replace every tensor in a nested dict/list by {"__tensor__": key}; collect the tensors."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        return {
            "__dict__": [
                [_flatten(k, tensors, f"{path}.k{i}"), _flatten(v, tensors, f"{path}.{i}")]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    return obj


def _unflatten(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, dict) and "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if isinstance(obj, dict) and "__tuple__" in obj:
        return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
    if isinstance(obj, dict) and "__dict__" in obj:
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(root: str | Path, step: int, state: dict, keep: int = 3) -> Path:
    """Write `state` (nested dicts/lists of tensors and JSON values) as checkpoint `step`; keep the last `keep`.
    A write that fails (a full disk) removes its temporary folder and is an OSError naming the disk."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:07d}"
    tmp = root / f".tmp-{PREFIX}{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        tensors: dict[str, torch.Tensor] = {}
        skeleton = _flatten(state, tensors, "s")
        save_file(tensors, tmp / "tensors.safetensors")
        _fsync(tmp / "tensors.safetensors")
        meta = {"step": step, "sha256": _sha256(tmp / "tensors.safetensors"), "state": skeleton}
        (tmp / "state.json").write_text(json.dumps(meta))
        _fsync(tmp / "state.json")
    except Exception as error:  # OSError, or safetensors' own error type for the same full disk
        shutil.rmtree(tmp, ignore_errors=True)
        free = shutil.disk_usage(root).free / 2**20
        raise OSError(
            f"could not write checkpoint {final} ({error}); {free:.0f} MiB free on the disk of {root}. The "
            "checkpoints before it are intact: free space and re-run the same command to resume"
        ) from None
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    return final


def list_checkpoints(root: str | Path) -> list[Path]:
    """The checkpoint folders under `root`, oldest first (by step number: step-10000000 after step-9999999)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(root: str | Path) -> Path | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def load_checkpoint(path: str | Path) -> dict:
    """Read and verify a checkpoint; a missing, truncated or altered file is a ValueError naming it."""
    path = Path(path)
    state_file, tensor_file = path / "state.json", path / "tensors.safetensors"
    for f in (state_file, tensor_file):
        if not f.is_file():
            raise ValueError(f"checkpoint file missing: {f}")
    try:
        meta = json.loads(state_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"corrupted checkpoint file {state_file}: {error}") from None
    if _sha256(tensor_file) != meta.get("sha256"):
        raise ValueError(f"corrupted checkpoint file {tensor_file}: its sha256 does not match {state_file}")
    try:
        tensors = load_file(tensor_file)
    except Exception as error:  # safetensors raises its own error types
        raise ValueError(f"corrupted checkpoint file {tensor_file}: {error}") from None
    return _unflatten(meta["state"], tensors)


def resume_state(root: str | Path) -> tuple[Path, dict] | None:
    """(path, state) of the newest checkpoint that verifies, or None when there is none.

    A corrupt checkpoint is renamed `corrupt-<name>` (kept for inspection) and the next older one is tried;
    when checkpoints exist but none verifies, a ValueError says so rather than silently starting over."""
    checkpoints = list_checkpoints(root)
    set_aside = Path(root).is_dir() and any(Path(root).glob(f"corrupt-{PREFIX}*"))
    for path in reversed(checkpoints):
        try:
            return path, load_checkpoint(path)
        except ValueError as error:
            aside = path.with_name(f"corrupt-{path.name}")
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(path, aside)
            log.warning("%s; set it aside as %s and trying the checkpoint before it", error, aside)
    if checkpoints or set_aside:  # also on the re-run after this error: never a silent start from step 0
        raise ValueError(
            f"no intact checkpoint in {root} (the corrupt ones are kept as corrupt-step-*): "
            "move them away to start the run over"
        )
    return None


def load_parts(path: Path, state: dict, parts: dict) -> None:
    """Load every part (name -> anything with load_state_dict) from checkpoint `state`, read from `path`; a part
    that does not fit (a layer the config adds or removes) is a ValueError naming the checkpoint and the keys."""
    for name, part in parts.items():
        try:
            part.load_state_dict(state[name])
        except (RuntimeError, ValueError) as error:
            raise ValueError(
                f"{path}: its {name} does not fit this config; resume with the config the run started with "
                f"({' '.join(str(error).split())[:300]})"
            ) from error


def resume_parts(root: str | Path, parts: dict, check=None, say=print) -> tuple[int, list]:
    """Load every part from the newest intact checkpoint under `root` (load_parts), after `check(path, state)`
    (which raises when the checkpoint cannot resume); (step, history) from there, or (0, []) when there is none."""
    resumed = resume_state(root)
    if not resumed:
        return 0, []
    path, state = resumed
    if check is not None:
        check(path, state)
    load_parts(path, state, parts)
    say(f"resumed from {path} at step {state['step']}")
    return state["step"], state["history"]


class TrainingStopped(Exception):
    """The run stopped at the user's request after writing a checkpoint; re-running the command resumes it."""


class StopOnInterrupt:
    """Within `with StopOnInterrupt() as stop:`, the first SIGINT sets `stop.requested` (the loop checkpoints
    after its current step, then calls `stop.stop_if_requested`); a second SIGINT raises KeyboardInterrupt at once.
    Only in the main thread of a single-process run (several processes must stop at the same step)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step (a checkpoint is written); press Ctrl-C again to stop at once", flush=True)

    def stop_if_requested(self, step: int, total: int) -> None:
        """Raise TrainingStopped after a requested stop (the loop has just written its checkpoint)."""
        if self.requested and step < total:
            raise TrainingStopped(f"stopped at step {step} of {total}; re-run the same command to resume")

    def __enter__(self) -> StopOnInterrupt:
        if self.enabled:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self.previous)
