"""The training loop every family runs (t2i.training.loop), tested once for all of them."""

import dataclasses
from pathlib import Path

import pytest
import torch

from t2i.checkpoint import load_checkpoint
from t2i.config import Config
from t2i.training.loop import TrainingTask, start_run, train


@dataclasses.dataclass
class Section:  # a training section's cadence fields
    steps: int = 6
    seed: int = 0
    log_every: int = 2
    sample_every: int = 3
    checkpoint_every: int = 3
    keep_checkpoints: int = 3
    snapshot_every: int | None = None


class LineTask(TrainingTask):
    """y = w·x by SGD, with a loss that is NaN from step `nan_from` on; "half" is a (sum, count) loss."""

    name, curves = "line", ("loss", "half")

    def __init__(self, nan_from: int = 10**9):
        self.w = torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.SGD(self.w.parameters(), lr=0.1)
        self.parts, self.nan_from, self.images_per_step, self.saved = (
            {"w": self.w, "sgd": self.optimizer},
            nan_from,
            4,
            [],
        )

    def train_step(self, step: int) -> dict:
        x = torch.randn(4, 1, generator=torch.Generator().manual_seed(step))
        loss = ((self.w(x) - 3 * x) ** 2).mean() * (float("nan") if step >= self.nan_from else 1.0)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss, "half": (torch.tensor(float(step)), 2)}

    def sample(self, step: int, folder: Path) -> None:
        (folder / f"samples-{step:07d}.txt").write_text(str(self.w.weight.item()))

    def save_model(self, folder: Path) -> None:
        folder.mkdir(exist_ok=True)
        self.saved.append(self.w.weight.detach().clone())


def _train(out, steps=6, task=None):
    run = start_run(Config(), Section(steps=steps), out)
    task = task or LineTask()
    return train(run, task), task


def test_logs_are_means_and_a_resumed_run_ends_where_a_straight_one_does(tmp_path):
    folder, straight = _train(tmp_path / "straight")
    assert folder == tmp_path / "straight" / "model" and folder.is_dir()
    history = load_checkpoint(tmp_path / "straight" / "checkpoints" / "step-0000006")["history"]
    assert [h["step"] for h in history] == [2, 4, 6] and [h["half"] for h in history] == [0.25, 1.25, 2.25]
    assert {"loss", "half", "images_per_s"} <= set(history[0])
    assert sorted(p.name for p in (tmp_path / "straight" / "samples").iterdir()) == [
        "losses.png",
        "samples-0000003.txt",
        "samples-0000006.txt",
    ]
    assert list((tmp_path / "straight" / "logs").rglob("events.out.tfevents.*"))  # TensorBoard scalars
    _train(tmp_path / "resumed", steps=3)
    _, resumed = _train(tmp_path / "resumed")
    assert torch.equal(straight.saved[0], resumed.saved[0])


def test_a_nan_loss_stops_naming_the_steps_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError, match=r"line loss is nan in steps 5-6; .*step-0000003"):
        _train(tmp_path, task=LineTask(nan_from=4))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-0000003"]


def test_every_family_writes_tensorboard_scalars(
    trained_tiny, tiny_model, tiny_pixel, tiny_gan, tiny_vq, tiny_pixelcnn, tiny_cascade
):
    models = (tiny_model, tiny_pixel, tiny_gan, tiny_vq[0], tiny_pixelcnn, tiny_cascade)
    runs = [trained_tiny[1], *(Path(m).parent for m in models)]
    assert all(list((run / "logs").rglob("events.out.tfevents.*")) for run in runs)


def test_snapshots_are_model_folders_along_the_way_and_leave_training_as_it_was(tiny_faces, text_cache_dir, tmp_path):
    from safetensors.torch import load_file

    from t2i.config import load_config
    from t2i.families import load_pipeline
    from t2i.pixel_diffusion.train import train_pixel_diffusion

    config = load_config("configs/cascade-base-tiny.yaml")  # 16×16 pixels: the EMA weights are what is saved
    plain = train_pixel_diffusion(config, tiny_faces, tmp_path / "plain", text_cache_dir)
    config.diffusion_training = dataclasses.replace(config.diffusion_training, snapshot_every=4)
    snapped = train_pixel_diffusion(config, tiny_faces, tmp_path / "snapped", text_cache_dir)
    weights = "unet/diffusion_pytorch_model.safetensors"
    a, b = load_file(plain / weights), load_file(snapped / weights)
    assert all(torch.equal(a[k], b[k]) for k in a)
    snapshots = tmp_path / "snapped" / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == ["step-0000004", "step-0000008"]  # the last is the model
    early = load_file(snapshots / "step-0000004" / weights)
    assert not all(torch.equal(early[k], b[k]) for k in b)
    assert load_pipeline(snapshots / "step-0000008").image_size == 16
