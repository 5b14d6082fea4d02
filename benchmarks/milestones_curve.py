"""The plot beside the milestones table: alignment and Fréchet distance against training images seen, one line
per family, scored on each run's snapshots (trained with `snapshot_every`: OUT/snapshots/step-N) and its final
model, with the default suite at a smaller size (the same prompts, seeds and referee for every point).

    python benchmarks/milestones_curve.py OUT RUN [RUN ...]     (writes OUT/curves.json and OUT/curves.png)

Images seen counts the last stage's training images (the UNet's, the prior's, the upsampler's); a run's first
stage (an autoencoder, a cascade's base) is in the table's time column, not on this axis.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from t2i.config import load_config, saved_split_fractions  # noqa: E402
from t2i.eval.alignment import Suite, evaluate_setting, load_real_images  # noqa: E402
from t2i.eval.classifier import load_classifier  # noqa: E402
from t2i.families import load_pipeline  # noqa: E402

SECTIONS = {  # family -> the training section of its last stage
    "latent-diffusion": "diffusion_training",
    "pixel-diffusion": "diffusion_training",
    "cascade": "diffusion_training",
    "gan": "gan_training",
    "vq-transformer": "transformer_training",
    "pixelcnn": "pixelcnn_training",
}


def points(run: Path) -> list[tuple[int, Path]]:
    """(images seen, model folder) of each snapshot of a run and of its final model."""
    config = load_config(run / "config.yaml")
    section = getattr(config, SECTIONS[config.family])
    per_step = section.batch_size * getattr(section, "grad_accum", 1)
    folders = [(int(p.name.split("-")[1]), p) for p in sorted((run / "snapshots").glob("step-*"))]
    return [(step * per_step, folder) for step, folder in [*folders, (section.steps, run / "model")]]


def score(folder: Path, suite: Suite, classifier, cases, test_features) -> dict:
    pipe = load_pipeline(folder)
    result, _ = evaluate_setting(
        pipe, classifier, cases, test_features, n_per_prompt=suite.n_per_prompt, settings=pipe.defaults, seed=0
    )
    return {"alignment": result["alignment"], "frechet_distance": result["frechet_distance"]}


def main(out: Path, runs: list[Path], data="data/faces20k", classifier_dir="weights/classifier", n_prompts=32) -> dict:
    classifier, curves = load_classifier(classifier_dir), {}
    for run in runs:
        suite = Suite(run / "model", classifier_dir, data, out, n_prompts=n_prompts, n_per_prompt=2)
        fractions = saved_split_fractions(run / "model")
        cases = suite.default_cases(classifier.attributes, fractions)
        size = load_config(run / "config.yaml").data.image_size  # the model's own, without loading it once more
        real = load_real_images(data, size, n_train=64, split_fractions=fractions)
        test_features = classifier.predict(real.test_images)[1]
        curves[run.name] = [
            {"images_seen": seen} | score(folder, suite, classifier, cases, test_features)
            for seen, folder in points(run)
        ]
        print(run.name, curves[run.name])
    out.mkdir(parents=True, exist_ok=True)
    (out / "curves.json").write_text(json.dumps(curves, indent=2))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, curve in curves.items():
        seen = [p["images_seen"] for p in curve]
        axes[0].plot(seen, [100 * p["alignment"] for p in curve], marker="o", label=name)
        axes[1].plot(seen, [p["frechet_distance"] for p in curve], marker="o", label=name)
    for ax, title in zip(axes, ("alignment (%)", "Fréchet distance (classifier features)"), strict=True):
        ax.set(title=title, xlabel="training images seen (last stage)", xscale="log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=90)
    return curves


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
