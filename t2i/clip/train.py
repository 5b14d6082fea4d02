"""`t2i train clip`: the dual encoder of t2i.clip.model trained contrastively on a dataset's image–caption pairs.

Each step takes a batch of training images, one caption each (drawn by the same BatchPlan as every family:
a pure function of the step, so resume is exact), mirrored where the plan says; the loss is CLIP's symmetric
InfoNCE with the learned temperature. The sample "grid" is the similarity matrix of 8 held-out images and their
captions (a good model has its largest value on the diagonal).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from diffusers.optimization import get_scheduler  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from t2i.clip.model import build_clip, clamp_temperature, save_clip, text_tower_path  # noqa: E402
from t2i.config import ContrastiveConfig, save_config, validate  # noqa: E402
from t2i.data.pixels import PixelImages  # noqa: E402
from t2i.text import tokenize  # noqa: E402
from t2i.training.batches import BatchPlan, held_out_rows  # noqa: E402
from t2i.training.loop import Run, TrainingTask, start_run, train  # noqa: E402


class ClipTask(TrainingTask):
    """The dual encoder, AdamW with two learning rates (image tower and projections; the text tower's top
    layers), warm-up then cosine."""

    name, model_folder, curves, shown = "clip", "clip", ("loss", "temperature"), ("loss",)
    title = "CLIP (symmetric InfoNCE; temperature = 1 / exp(s))"

    def __init__(self, config: ContrastiveConfig, run: Run, data_dir: str | Path):
        tc = config.clip_training
        self.config, self.tc, self.run = config, tc, run
        self.images = PixelImages(data_dir, config.data.image_size, config.data.split_fractions, config.data.flip)
        self.plan = BatchPlan.of_training(self.images, tc, config.caption_augment)
        self.tokenizer = AutoTokenizer.from_pretrained(text_tower_path(config), local_files_only=True)
        self.model = build_clip(config).to(run.device)
        model = self.model
        text = [p for p in model.text_model.parameters() if p.requires_grad]
        image = [*model.vision_model.parameters(), *model.visual_projection.parameters()]
        image += model.text_projection.parameters()
        groups = [
            {"params": image, "lr": tc.lr},
            {"params": text, "lr": tc.text_lr},
            {"params": [model.logit_scale], "lr": tc.lr, "weight_decay": 0.0},  # the temperature: no decay
        ]
        self.optimizer = torch.optim.AdamW(groups, weight_decay=tc.weight_decay)
        self.lr_schedule = get_scheduler(
            "cosine", self.optimizer, num_warmup_steps=tc.warmup_steps, num_training_steps=tc.steps
        )
        self.parts = {"model": self.model, "optimizer": self.optimizer, "lr_schedule": self.lr_schedule}
        self.images_per_step = tc.batch_size
        self.held_out = held_out_rows(self.images, 8)

    def inputs(self, rows, captions: list[str], flips) -> dict[str, torch.Tensor]:
        text = tokenize(self.tokenizer, captions, self.config.text.max_tokens)
        pixels = self.images.latents(rows, flips)
        return {k: v.to(self.run.device) for k, v in text.items()} | {"pixel_values": pixels.to(self.run.device)}

    def train_step(self, step: int) -> dict:
        rows, captions, flips = self.plan.micro_batch(step)
        loss = self.model(**self.inputs(rows, captions, flips), return_loss=True).loss  # symmetric InfoNCE
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.lr_schedule.step()
        clamp_temperature(self.model)
        return {"loss": loss.detach(), "temperature": 1 / self.model.logit_scale.detach().exp()}

    @torch.no_grad()
    def sample(self, step: int, folder: Path) -> None:
        rows = torch.tensor(self.held_out)
        captions = [self.images.records[i]["captions"][0] for i in self.held_out]
        self.model.eval()
        similarity = self.model(
            **self.inputs(rows, captions, torch.zeros(len(rows), dtype=torch.bool))
        ).logits_per_image
        self.model.train()
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        shown = ax.imshow(similarity.softmax(1).cpu(), vmin=0, vmax=1, cmap="viridis")
        ax.set(title=f"step {step}: p(caption | image), held-out", xlabel="caption", ylabel="image")
        fig.colorbar(shown)
        fig.tight_layout()
        fig.savefig(folder / f"similarity-{step:07d}.png", dpi=90)
        plt.close(fig)

    def save_model(self, folder: Path) -> None:
        save_clip(self.model, self.config, folder)
        save_config(self.config, folder / "t2i_config.yaml")


def train_clip(config: ContrastiveConfig, data_dir: str | Path, out_dir: str | Path) -> Path:
    """Train (or resume) a CLIP on a dataset's train split; returns its folder OUT/clip. One process."""
    validate(config)
    run = start_run(config, config.clip_training, out_dir, one_process=True)
    return train(run, ClipTask(config, run, data_dir))
