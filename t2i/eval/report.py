"""`t2i eval report`: one Markdown page with plots that says how well a model follows its text.

    classifier accuracy (real test) ─┐
    autoencoder check                ├─► report.md + PNGs + report.json
    alignment / Fréchet distance vs sampler and steps, DDPM-1000, guidance sweep, references ─┘

It ends by picking the sampler settings the pipeline should use: the guidance with the best alignment
(ties within one point go to the lower Fréchet distance), then the fewest DPM-Solver++ steps whose
alignment is within one point of its best.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tqdm import tqdm  # noqa: E402

from t2i.clip.score import ClipReferee  # noqa: E402
from t2i.config import saved_split_fractions  # noqa: E402
from t2i.eval.alignment import (  # noqa: E402
    Suite,
    evaluate_setting,
    load_real_images,
    references,
    worst_prompts_grid,
)
from t2i.eval.autoencoder import evaluate_autoencoder  # noqa: E402
from t2i.eval.classifier import load_classifier  # noqa: E402

SCHEDULERS = ("dpm++", "ddim", "euler", "unipc")
STEPS = (5, 10, 20, 50)
GUIDANCE = (1.0, 2.0, 3.0, 5.0, 7.5)


def _shown(path: str | Path) -> str:
    """A path as the report shows it: relative to the working directory when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def standard_error(p: float, n: int) -> float:
    """Binomial standard error of a share p measured on n assertions, in points."""
    return 100 * math.sqrt(max(p * (1 - p), 1e-12) / max(n, 1))


def pick_defaults(guidance_sweep: dict, dpm_steps: dict) -> tuple[float, int]:
    """Guidance: best alignment, ties within 1 point to the lowest FD. Steps: fewest within 1 point of the best."""
    best = max(r["alignment"] for r in guidance_sweep.values())
    close = {g: r for g, r in guidance_sweep.items() if r["alignment"] >= best - 0.01}
    guidance = min(close, key=lambda g: close[g]["frechet_distance"])
    best = max(r["alignment"] for r in dpm_steps.values())
    steps = min(s for s, r in dpm_steps.items() if r["alignment"] >= best - 0.01)
    return float(guidance), int(steps)


def _bars(path, labels, series: dict[str, list[float]], title, ylabel):
    fig, ax = plt.subplots(figsize=(max(8, 0.42 * len(labels)), 4))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        ax.bar([i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))], values, width, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=70, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _sweep_plot(path, sweeps: dict, ddpm: dict, references_: dict):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, by_steps in sweeps.items():
        steps = sorted(by_steps)
        left.plot(steps, [100 * by_steps[s]["alignment"] for s in steps], "o-", label=name)
        right.plot(steps, [by_steps[s]["frechet_distance"] for s in steps], "o-", label=name)
    left.plot([1000], [100 * ddpm["alignment"]], "k*", ms=10, label="ddpm (1000 steps)")
    right.plot([1000], [ddpm["frechet_distance"]], "k*", ms=10, label="ddpm (1000 steps)")
    left.axhline(100 * references_["real_test"]["alignment"], color="green", ls="--", lw=1, label="real images")
    left.axhline(
        100 * references_["real_through_autoencoder"]["alignment"], color="olive", ls=":", lw=1, label="real → AE"
    )
    left.axhline(100 * references_["empty_prompt"]["alignment"], color="gray", ls="--", lw=1, label="empty prompt")
    right.axhline(
        next(iter(references_["frechet_real_train_vs_test"].values())), color="green", ls="--", lw=1, label="real"
    )
    for ax, label in ((left, "alignment (%)"), (right, "Fréchet distance (classifier features)")):
        ax.set_xscale("log")
        ax.set_xlabel("sampler steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _guidance_plot(path, sweep: dict):
    scales = sorted(sweep)
    fig, left = plt.subplots(figsize=(5.5, 3.6))
    left.plot(scales, [100 * sweep[g]["alignment"] for g in scales], "o-", color="C0")
    left.set_xlabel("guidance scale g")
    left.set_ylabel("alignment (%)", color="C0")
    right = left.twinx()
    right.plot(scales, [sweep[g]["frechet_distance"] for g in scales], "s--", color="C1")
    right.set_ylabel("Fréchet distance", color="C1")
    left.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _sample_sweeps(pipe, classifier, cases, test_features, *, n_per_prompt, seed, ddpm_prompts, out, clip=None):
    """Every sampler × steps at g = 3 and every guidance at DPM-Solver++ 20 steps, then DDPM 1000 steps on the
    first `ddpm_prompts` prompts: (results by (scheduler, steps, guidance), the DDPM result)."""
    from t2i.pipeline import SamplingSettings

    n_images = len(cases) * n_per_prompt
    settings = [(s, n, 3.0) for s in SCHEDULERS for n in STEPS] + [("dpm++", 20, g) for g in GUIDANCE if g != 3.0]
    total = len(settings) * n_images + ddpm_prompts * n_per_prompt
    results: dict[tuple, dict] = {}
    with tqdm(total=total, desc="report: generate") as bar:
        common = {"n_per_prompt": n_per_prompt, "seed": seed, "progress": bar.update, "clip": clip}
        for scheduler, steps, guidance in settings:
            start = time.perf_counter()
            result, images = evaluate_setting(
                pipe, classifier, cases, test_features, settings=SamplingSettings(steps, guidance, scheduler), **common
            )
            result["seconds_per_image"] = (time.perf_counter() - start) / len(images)
            results[(scheduler, steps, guidance)] = result
            if (scheduler, steps, guidance) == ("dpm++", 20, 3.0):
                worst_prompts_grid(result, images, n_per_prompt, out / "worst-prompts.png")
        start = time.perf_counter()
        ddpm_settings = SamplingSettings(1000, 3.0, "ddpm")
        ddpm, _ = evaluate_setting(
            pipe, classifier, cases[:ddpm_prompts], test_features, settings=ddpm_settings, **common
        )
        ddpm["seconds_per_image"] = (time.perf_counter() - start) / (ddpm_prompts * n_per_prompt)
    # the fast samplers on DDPM's prompt subset, so the 1000-step reference compares like with like
    for result in results.values():
        subset = result["per_prompt"][:ddpm_prompts]
        result["alignment_on_ddpm_prompts"] = sum(p["alignment"] for p in subset) / len(subset)
    return results, ddpm


def _plots(out: Path, classifier_attributes, *, main, refs, autoencoder, sweeps, ddpm, guidance_sweep) -> None:
    """The report's PNGs: per-attribute alignment, the autoencoder check, the sampler and guidance sweeps."""
    attributes = sorted(main["per_attribute"])
    _bars(
        out / "per-attribute-alignment.png",
        attributes,
        {
            "real test images, own captions": [100 * refs["real_test"]["per_attribute"].get(a, 0) for a in attributes],
            "the same through the autoencoder": [
                100 * refs["real_through_autoencoder"]["per_attribute"].get(a, 0) for a in attributes
            ],
            "generated (dpm++ 20, g=3)": [100 * main["per_attribute"][a] for a in attributes],
            "generated from the empty prompt": [100 * refs["empty_prompt"]["per_attribute"][a] for a in attributes],
        },
        "Is the asserted attribute in the image? (attribute classifier)",
        "alignment (%)",
    )
    _bars(
        out / "autoencoder-check.png",
        classifier_attributes,
        {
            "originals": [100 * v for v in autoencoder["classifier_accuracy_originals_per_attribute"].values()],
            "reconstructions": [
                100 * v for v in autoencoder["classifier_accuracy_reconstructions_per_attribute"].values()
            ],
        },
        "Classifier accuracy on test images and on their autoencoder reconstructions",
        "accuracy (%)",
    )
    _sweep_plot(out / "samplers.png", sweeps, ddpm, refs)
    _guidance_plot(out / "guidance.png", guidance_sweep)


def write_report(suite: Suite, *, ddpm_prompts: int = 6, save_defaults: bool = False) -> Path:
    """Measure everything the page shows and write out/report.md, its PNGs and report.json; with
    `save_defaults`, also the picked settings as the model folder's sampling.json (what generation uses)."""
    from t2i.families import model_family
    from t2i.pipeline import SamplingSettings, Text2ImagePipeline

    model_dir, classifier_dir, data_dir = suite.model_dir, suite.classifier_dir, suite.data_dir
    n_prompts, n_per_prompt, seed = suite.n_prompts, suite.n_per_prompt, suite.seed
    if model_family(model_dir) != "latent-diffusion":
        raise ValueError(
            f"{model_dir}: `t2i eval report` studies a latent diffusion model's samplers and autoencoder; "
            f"a {model_family(model_dir)} model is measured with `t2i eval alignment`"
        )
    started = time.perf_counter()
    out = Path(suite.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = Text2ImagePipeline.from_pretrained(model_dir)
    classifier = load_classifier(classifier_dir)
    classifier_info = json.loads((Path(classifier_dir) / "classifier.json").read_text())
    fractions = saved_split_fractions(model_dir)  # score on images the model did not train on
    cases = suite.default_cases(classifier.attributes, fractions)
    n_images = n_prompts * n_per_prompt
    real = load_real_images(
        data_dir, pipe.vae.config.sample_size, n_train=n_images, seed=seed, split_fractions=fractions
    )
    test_values, test_features = classifier.predict(real.test_images)

    clip = ClipReferee(suite.clip_dir) if suite.clip_dir else None
    sweep = dict(n_per_prompt=n_per_prompt, seed=seed, ddpm_prompts=ddpm_prompts, out=out, clip=clip)
    results, ddpm = _sample_sweeps(pipe, classifier, cases, test_features, **sweep)
    fd_sizes = [n_images, ddpm_prompts * n_per_prompt]
    refs = references(
        pipe,
        classifier,
        cases,
        real,
        test_predicted=(test_values, test_features),
        n_empty=n_images,
        settings=SamplingSettings(),
        seed=seed,
        fd_sizes=fd_sizes,
        clip=clip,
    )
    autoencoder = evaluate_autoencoder(Path(model_dir) / "vae", data_dir, "test", classifier_dir=classifier_dir)

    sweeps = {s: {n: results[(s, n, 3.0)] for n in STEPS} for s in SCHEDULERS}
    guidance_sweep = {g: results[("dpm++", 20, g)] for g in GUIDANCE}
    default_guidance, default_steps = pick_defaults(guidance_sweep, sweeps["dpm++"])
    if save_defaults:
        SamplingSettings(default_steps, default_guidance, "dpm++").save(model_dir)
    main = results[("dpm++", 20, 3.0)]
    measured = dict(
        main=main, refs=refs, autoencoder=autoencoder, sweeps=sweeps, ddpm=ddpm, guidance_sweep=guidance_sweep
    )
    _plots(out, classifier.attributes, **measured)

    size = {"prompts": n_prompts, "images_per_prompt": n_per_prompt, "seed": seed}
    report = _report_values(
        model_dir, classifier_dir, size, cases, classifier_info, results, refs=refs, ddpm=ddpm, autoencoder=autoencoder
    )
    report |= {"default_guidance": default_guidance, "default_steps": default_steps}
    report["minutes"] = (time.perf_counter() - started) / 60
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(_markdown(report, cases=cases, **measured))
    return out / "report.md"


def _report_values(model_dir, classifier_dir, suite, cases, classifier_info, results, *, refs, ddpm, autoencoder):
    """report.json's values (every measured figure; the Markdown is written from them)."""
    return {
        "model": _shown(model_dir),
        "classifier": _shown(classifier_dir),
        "suite": suite | {"held_out_prompts": sum(bool(c.held_out) for c in cases)},
        "classifier_test_accuracy": classifier_info["test_accuracy"],
        "classifier_test_mean_accuracy": classifier_info["test_mean_accuracy"],
        "settings": [
            {k: v for k, v in r.items() if k != "per_prompt"} | {"key": list(key)} for key, r in results.items()
        ],
        "ddpm_1000": {k: v for k, v in ddpm.items() if k != "per_prompt"},
        "references": refs,
        "autoencoder": autoencoder,
    }


def _markdown(report, *, sweeps, guidance_sweep, ddpm, main, refs, autoencoder, cases) -> str:
    lines = [
        *_summary_lines(report, main, refs),
        *_attribute_lines(report, main, refs),
        *_sampler_lines(sweeps, guidance_sweep, ddpm, refs),
        *_autoencoder_and_suite_lines(autoencoder, cases),
    ]
    return "\n".join(lines)


def _clip_lines(main, ceiling, floor) -> list[str]:
    """The CLIP referee's row under the summary table (`--clip`), or none."""
    if "clip" not in main:
        return []
    model, real, empty = main["clip"], ceiling["clip"], floor["clip"]
    return [
        "",
        f"CLIP referee (`--clip`): CLIP score **{model['clip_score']:.1f}**, R-precision "
        f"**{100 * model['r_precision']:.1f}%** (real test images {real['clip_score']:.1f} / "
        f"{100 * real['r_precision']:.1f}%; the empty prompt {empty['clip_score']:.1f} / "
        f"{100 * empty['r_precision']:.1f}%).",
    ]


def _summary_lines(report, main, refs) -> list[str]:
    n = main["assertions"]
    ceiling, through_ae, floor = refs["real_test"], refs["real_through_autoencoder"], refs["empty_prompt"]
    fd_floor = refs["frechet_real_train_vs_test"]
    suite = report["suite"]
    return [
        f"# Evaluation report: `{report['model']}`",
        "",
        f"Made by `t2i eval report` in {report['minutes']:.1f} minutes. Prompt suite: {suite['prompts']} prompts "
        f"× {suite['images_per_prompt']} images (seed {suite['seed']}), each naming 4 attributes and the sex in "
        f"the dataset's caption templates; {suite['held_out_prompts']} of them name a combination that no "
        "training caption names together (held out). An attribute classifier trained on real images only "
        "decides whether each asserted attribute is in the image.",
        "",
        "## Summary",
        "",
        "| | alignment | Fréchet distance |",
        "|---|---|---|",
        f"| generated, DPM-Solver++ 20 steps, g = 3 | **{100 * main['alignment']:.1f}%** "
        f"(± {standard_error(main['alignment'], n):.1f}) | {main['frechet_distance']:.2f} |",
        f"| seen combinations / held-out combinations | {100 * main['seen']:.1f}% / {100 * main['held_out']:.1f}% | |",
        f"| real test images with their own captions (ceiling) | {100 * ceiling['alignment']:.1f}% | "
        f"{fd_floor[suite['prompts'] * suite['images_per_prompt']]:.2f} (real train vs test) |",
        f"| the same real images through the model's autoencoder, D(E(x)) (a perfect UNet's ceiling) | "
        f"{100 * through_ae['alignment']:.1f}% | |",
        f"| generated from the empty prompt (floor) | {100 * floor['alignment']:.1f}% | |",
        *_clip_lines(main, ceiling, floor),
        "",
        f"**Settings the pipeline should use:** guidance **{report['default_guidance']:g}**, "
        f"**{report['default_steps']}** DPM-Solver++ steps (the best guidance by alignment, ties within one point "
        "to the lower Fréchet distance; then the fewest steps within one point of the best).",
        "",
        "Alignment is the share of asserted attributes the classifier finds (± one binomial standard error, "
        f"{n} assertions). The Fréchet distance is computed on the classifier's penultimate features against the "
        "real test split; it is biased upwards for small samples, so compare it only with the real train-versus-"
        "test distance at the same sample size.",
        "",
    ]


def _attribute_lines(report, main, refs) -> list[str]:
    ceiling, through_ae, floor = refs["real_test"], refs["real_through_autoencoder"], refs["empty_prompt"]
    return [
        "## The attribute classifier",
        "",
        f"Mean accuracy on the real test split: **{100 * report['classifier_test_mean_accuracy']:.2f}%**.",
        "",
        "| attribute | accuracy |",
        "|---|---|",
        *[f"| {a} | {100 * v:.1f}% |" for a, v in report["classifier_test_accuracy"].items()],
        "",
        "## Per attribute",
        "",
        "![per-attribute alignment](per-attribute-alignment.png)",
        "",
        "| attribute | generated | real (ceiling) | real through the autoencoder | empty prompt (floor) |",
        "|---|---|---|---|---|",
        *[
            f"| {a} | {100 * v:.1f}% | {100 * ceiling['per_attribute'].get(a, float('nan')):.1f}% | "
            f"{100 * through_ae['per_attribute'].get(a, float('nan')):.1f}% | "
            f"{100 * floor['per_attribute'].get(a, float('nan')):.1f}% |"
            for a, v in main["per_attribute"].items()
        ],
        "",
        "The prompts the model follows worst (each row: one prompt, its images, its score):",
        "",
        "![worst prompts](worst-prompts.png)",
        "",
    ]


def _sampler_lines(sweeps, guidance_sweep, ddpm, refs) -> list[str]:
    fd_floor = refs["frechet_real_train_vs_test"]
    return [
        "## Samplers and steps (g = 3)",
        "",
        "![samplers](samplers.png)",
        "",
        "| sampler | " + " | ".join(f"{s} steps" for s in STEPS) + " |",
        "|---|" + "---|" * len(STEPS),
        *[
            f"| {name} | "
            + " | ".join(
                f"{100 * r['alignment']:.1f}% / FD {r['frechet_distance']:.1f} / {r['seconds_per_image']:.2f} s"
                for r in by_steps.values()
            )
            + " |"
            for name, by_steps in sweeps.items()
        ],
        "",
        f"DDPM with 1000 steps on the first {len(ddpm['per_prompt'])} prompts: alignment "
        f"{100 * ddpm['alignment']:.1f}% (± {standard_error(ddpm['alignment'], ddpm['assertions']):.1f}), "
        f"FD {ddpm['frechet_distance']:.1f} (real floor at this size "
        f"{list(fd_floor.values())[-1]:.1f}), {ddpm['seconds_per_image']:.1f} s per image. On the same prompts "
        f"DPM-Solver++ at 20 steps scores {100 * sweeps['dpm++'][20]['alignment_on_ddpm_prompts']:.1f}%.",
        "",
        "## Guidance scale (DPM-Solver++, 20 steps)",
        "",
        "![guidance](guidance.png)",
        "",
        "| g | alignment | Fréchet distance |",
        "|---|---|---|",
        *[
            f"| {g:g} | {100 * r['alignment']:.1f}% | {r['frechet_distance']:.2f} |"
            for g, r in sorted(guidance_sweep.items())
        ],
        "",
    ]


def _autoencoder_and_suite_lines(autoencoder, cases) -> list[str]:
    return [
        "## Autoencoder check",
        "",
        f"Classifier accuracy on the {autoencoder['images']} test images: "
        f"{100 * autoencoder['classifier_accuracy_originals']:.2f}% on the originals, "
        f"{100 * autoencoder['classifier_accuracy_reconstructions']:.2f}% on their reconstructions "
        f"(PSNR {autoencoder['psnr_db']:.2f} dB, SSIM {autoencoder['ssim']:.3f}).",
        "",
        "![autoencoder check](autoencoder-check.png)",
        "",
        "## The prompt suite",
        "",
        "| held out | prompt |",
        "|---|---|",
        *[f"| {'yes' if c.held_out else 'no'} | {c.prompt} |" for c in cases],
        "",
    ]
