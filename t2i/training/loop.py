"""The one training loop every family runs (nanoGPT's train.py, written once for all of them).

    run = start_run(config, config.gan_training, out)   # run folder, config.yaml, accelerate, seed
    task = GANTask(config, run, ...)                    # the family: its parts, its step, its grid, its folder
    model_dir = train(run, task)                        # resume, loop, logs, grids, checkpoints, model folder

The loop does for every family: exact resume from the newest intact checkpoint (every part's state dict, the
step and the loss history), a progress bar, TensorBoard scalars and the loss history every `log_every` steps
(the mean of each loss since the last log, kept on the device until then), a sample grid and `losses.png`
every `sample_every`, an atomic checkpoint every `checkpoint_every`, a stop naming the steps when a loss is
NaN or infinite (before anything is saved), and a checkpoint on the first Ctrl-C.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from tqdm import tqdm

from t2i.checkpoint import StopOnInterrupt, latest_checkpoint, resume_parts, save_checkpoint
from t2i.config import save_config
from t2i.devices import process_state, resolve_precision, use_fast_gpu_math
from t2i.plots import plot_losses


@dataclass
class Run:
    """A training run: its folder, its accelerator and the family's training section (`steps`, `seed`,
    `log_every`, `sample_every`, `checkpoint_every`, `keep_checkpoints`)."""

    out: Path
    accelerator: Accelerator
    tc: object

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process


def start_run(config, tc, out_dir: str | Path, *, precision: str | None = None, grad_accum: int = 1, one_process=False):
    """Make the run folder (checkpoints/, samples/, logs/, config.yaml), the accelerator (`precision` a config's
    mixed_precision, "auto" resolved for the device; None for a family that runs no autocast) and seed every
    generator with `tc.seed`."""
    out = Path(out_dir)
    for sub in ("checkpoints", "samples", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    AcceleratorState._reset_state()  # a run after another in one Python process (a notebook) takes its own precision
    accelerator = Accelerator(
        mixed_precision=resolve_precision(precision, process_state().device) if precision else None,
        gradient_accumulation_steps=grad_accum,
        log_with="tensorboard",
        project_dir=out / "logs",
    )
    if one_process and accelerator.num_processes > 1:
        raise ValueError(
            f"{getattr(config, 'family', 'clip')} trains on one process; launch it without accelerate's processes"
        )
    if accelerator.device.type == "cuda":
        use_fast_gpu_math()
    set_seed(tc.seed)
    save_config(config, out / "config.yaml")
    return Run(out, accelerator, tc)


class TrainingTask(ABC):
    """What a family gives the loop. `parts`: name -> anything with state_dict / load_state_dict (networks,
    optimizers, LR schedules, EMA, RNG), which a checkpoint holds; `train_step(step)`: one optimizer step, its
    loss values as tensors on the device (a value, or a (sum, count) pair that the log divides); `sample(step,
    folder)`: the sample grid PNG; `save_model(folder)`: the model folder, written once by the main process."""

    name = "training"  # the progress bar's and TensorBoard's name
    model_folder = "model"  # what `train` returns: OUT/model_folder
    curves: tuple[str, ...] = ("loss",)  # the losses of samples/losses.png
    title = ""  # its title
    shown: tuple[str, ...] = ("loss",)  # the losses of the progress bar
    images_per_step = 0  # over all processes: the logged images_per_s
    lr_schedule = None  # its last LR is logged

    parts: dict

    def prepare(self, run: Run, step: int) -> None:  # noqa: B027 (an optional hook: nothing to do by default)
        """After resuming at `step`: compile, `accelerator.prepare`, data streams that start at `step`."""

    def check_resume(self, path: Path, state: dict) -> None:  # noqa: B027 (an optional hook)
        """Raise a ValueError when checkpoint `state` (read from `path`) cannot resume with this config."""

    def checkpoint_info(self) -> dict:
        """JSON values a checkpoint records beside the parts."""
        return {}

    @abstractmethod
    def train_step(self, step: int) -> dict:
        """One optimizer step: its losses, as tensors on the device (or (sum, count) pairs)."""

    @abstractmethod
    def sample(self, step: int, folder: Path) -> None:
        """Write the sample grid of `step` into `folder`."""

    @abstractmethod
    def save_model(self, folder: Path) -> None:
        """Write the model folder."""


class GlobalRNG:
    """torch's global generator as a checkpoint part (for steps that draw from it, such as z ~ q(z|x))."""

    def state_dict(self) -> torch.Tensor:
        return torch.get_rng_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        torch.set_rng_state(state)


class LossMeans:
    """The mean of each loss over the steps since the last log, summed on the device (no wait for a GPU)."""

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, values: dict) -> None:
        for key, value in values.items():
            total, count = value if isinstance(value, tuple) else (value, 1)
            self.sums[key] = self.sums.get(key, 0) + total.detach().float()
            self.counts[key] = self.counts.get(key, 0) + count

    def first_not_finite(self) -> tuple[str, float] | None:
        """(key, value) of a sum that is NaN or infinite, else None."""
        for key, total in self.sums.items():
            if not torch.isfinite(total):
                return key, total.item()
        return None

    def pop(self) -> dict[str, float]:
        """The means (a loss with no samples since the last log left out), then start over."""
        means = {k: float(self.sums[k] / self.counts[k]) for k in self.sums if float(self.counts[k]) > 0}
        self.sums, self.counts = {}, {}
        return means


def train(run: Run, task: TrainingTask) -> Path:
    """Run `task` from its newest checkpoint to `run.tc.steps`; returns its model folder."""
    tc, accelerator, out = run.tc, run.accelerator, run.out
    step, history = resume_parts(out / "checkpoints", task.parts, check=task.check_resume, say=accelerator.print)
    task.prepare(run, step)
    accelerator.init_trackers(task.name)
    means, last_log, tick, seen = LossMeans(), step, time.perf_counter(), 0

    def ensure_finite() -> None:  # the loop's one wait for the GPU besides the logged values
        bad = means.first_not_finite()
        if bad:
            raise FloatingPointError(
                f"{task.name} {bad[0]} is {bad[1]} in steps {last_log + 1}-{step}; stopping. The last good "
                f"checkpoint ({latest_checkpoint(out / 'checkpoints')}) is untouched: lower the LR or check the data"
            )

    progress = tqdm(total=tc.steps, initial=step, desc=task.name, disable=not run.is_main)
    with StopOnInterrupt(enabled=accelerator.num_processes == 1) as stop:  # Ctrl-C: checkpoint, then stop
        while step < tc.steps:
            means.add(task.train_step(step))
            step, seen = step + 1, seen + task.images_per_step
            progress.update()
            last = step == tc.steps
            log_due = step % tc.log_every == 0 or last
            sample_due = run.is_main and (step % tc.sample_every == 0 or last)
            if log_due or sample_due:
                ensure_finite()
            if log_due:
                rate, tick, seen = seen / (time.perf_counter() - tick), time.perf_counter(), 0
                logs = {"step": step} | means.pop() | {"images_per_s": rate}
                if task.lr_schedule is not None:
                    logs["lr"] = task.lr_schedule.get_last_lr()[0]
                history.append(logs)
                last_log = step
                accelerator.log({f"{task.name}/{k}": v for k, v in logs.items() if k != "step"}, step=step)
                progress.set_postfix({k: f"{logs[k]:.4f}" for k in task.shown if k in logs} | {"img_s": f"{rate:.1f}"})
            if sample_due:
                task.sample(step, out / "samples")
                plot_losses(history, out / "samples" / "losses.png", list(task.curves), task.title)
            if step % tc.checkpoint_every == 0 or last or stop.requested:  # Ctrl-C may come while sampling
                ensure_finite()
                if run.is_main:
                    state = {"step": step, "history": history} | task.checkpoint_info()
                    state |= {name: part.state_dict() for name, part in task.parts.items()}
                    save_checkpoint(out / "checkpoints", step, state, tc.keep_checkpoints)
            if tc.snapshot_every and step % tc.snapshot_every == 0 and not last and run.is_main:
                task.save_model(out / "snapshots" / f"step-{step:07d}")  # a model folder along the way
            stop.stop_if_requested(step, tc.steps)
    progress.close()
    accelerator.end_training()
    if run.is_main:
        task.save_model(out / task.model_folder)
    accelerator.wait_for_everyone()
    return out / task.model_folder
