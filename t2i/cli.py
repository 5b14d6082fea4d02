"""The `t2i` command: parse arguments, call the library, say where the results went."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

from t2i.config import MAX_SEED

DEMO_MODEL = Path(__file__).resolve().parent.parent / "weights" / "demo"
CLASSIFIER = Path(__file__).resolve().parent.parent / "weights" / "classifier"
SEEDS = MAX_SEED  # the largest seed (image k of a request uses seed + k)
MODEL_DEFAULT = "(None: the model's own, from its sampling.json or its family)"


def bounded(kind: type, low: float, high: float):
    """An argparse type: an int or a finite float from `low` to `high` (argparse names the flag in its error)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not low <= value <= high:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text}")
        return value

    return parse


class Parser(argparse.ArgumentParser):
    """Every --help shows each option's default (subcommands inherit the class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def output_folder(path: str | Path, flag: str = "--out") -> Path:
    """Create (if needed) a folder to write into, or a ValueError naming the flag."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{flag} {path}: cannot create this folder ({error.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: this folder is not writable")
    return path


def _data_synth(args):
    from t2i.data.synthetic import synthesize_dataset

    out = synthesize_dataset(args.out, args.n, args.size, args.seed, args.workers, args.parts)
    print(f"wrote {args.n} captioned faces ({args.size}x{args.size}) to {out}")


def _data_shapes(args):
    from t2i.data.shapes import make_shapes

    out = make_shapes(args.out, args.n, args.seed, args.held_out)
    print(f"wrote {args.n} images of two coloured shapes and their captions to {out}")
    print(f"the benchmark's prompts: {out / 'prompts.jsonl'} (`t2i eval rephrasing --prompts`; docs/rephrasing.md)")


def _data_preview(args):
    from t2i.data.preview import preview_grid

    print(f"wrote {preview_grid(args.dir, args.out, n=args.n)}")


def _data_check(args):
    from t2i.data.check import scan_dataset

    report = scan_dataset(args.dir, args.size)
    print(report.summary())
    print(
        "note: training mirrors images left-right by default (data.flip: true); set data.flip: false when "
        "left and right matter (text, digits, captions that say 'on the left')"
    )
    return 0 if report.records else 1


def _train_autoencoder(args):
    from t2i.autoencoder.train import train_autoencoder
    from t2i.config import load_config

    print(f"autoencoder saved to {train_autoencoder(load_config(args.config), args.data, args.out)}")


def _train_diffusion(args):
    from pathlib import Path

    from t2i.autoencoder.cache import cache_latents
    from t2i.config import load_config
    from t2i.diffusion.train import train_diffusion

    config = load_config(args.config)
    if args.text_encoder:
        config.text.path = args.text_encoder
    cache = Path(args.cache or Path(args.out) / "cache")
    cache_latents(  # with several processes, each encodes its share of the shards
        args.autoencoder,
        args.data,
        cache,
        flip=config.data.flip,
        split_fractions=config.data.split_fractions,
        mixed_precision=config.diffusion_training.mixed_precision,
    )
    model = train_diffusion(config, cache, args.autoencoder, args.out, overfit_batch=args.overfit_batch)
    print(f"model saved to {model}; sample grids and loss curves in {Path(args.out) / 'samples'}")


def _train_pixel_diffusion(args):
    from t2i.config import load_config
    from t2i.pixel_diffusion.train import train_pixel_diffusion

    model = train_pixel_diffusion(load_config(args.config), args.data, args.out, args.cache, args.overfit_batch)
    print(f"model saved to {model}; sample grids and loss curves in {Path(args.out) / 'samples'}")


def _train_upsampler(args):
    from t2i.cascade.train import train_upsampler
    from t2i.config import load_config

    model = train_upsampler(load_config(args.config), args.data, args.base, args.out, args.cache)
    print(f"cascade saved to {model}; sample grids and loss curves in {Path(args.out) / 'samples'}")


def _train_clip(args):
    from t2i.clip.train import train_clip
    from t2i.config import load_clip_config

    print(f"CLIP saved to {train_clip(load_clip_config(args.config), args.data, args.out)}")


def _distill(args):
    from t2i.config import load_distill_config
    from t2i.distill.train import distill

    model = distill(load_distill_config(args.config), args.model, args.data, args.out, args.cache)
    print(f"student saved to {model}; sample grids and loss curves in {Path(args.out) / 'samples'}")


def _train_gan(args):
    from t2i.config import load_config
    from t2i.gan.train import train_gan

    model = train_gan(load_config(args.config), args.data, args.out, args.cache)
    print(f"model saved to {model}; sample grids and loss curves in {Path(args.out) / 'samples'}")


def _train_prior(args):
    from t2i.autoencoder.tokens import cache_tokens
    from t2i.config import load_config
    from t2i.training.token_prior import train_prior

    config = load_config(args.config)
    cache = Path(args.cache or Path(args.out) / "cache")
    cache_tokens(args.autoencoder, args.data, cache, config.data.flip, config.data.split_fractions)
    model = train_prior(config, cache, args.autoencoder, args.out)
    print(f"model saved to {model}; sample grids and loss curves in {Path(args.out) / 'samples'}")


def _eval_autoencoder(args):
    from t2i.eval.autoencoder import evaluate_autoencoder

    out = args.out or f"{args.model.rstrip('/')}-eval"
    _print_metrics(evaluate_autoencoder(args.model, args.data, args.split, out, classifier_dir=args.classifier))
    print(f"reconstruction grid and metrics.json in {out}")


def _print_metrics(metrics: dict) -> None:
    print(
        "\n".join(
            f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
            for k, v in metrics.items()
            if not isinstance(v, dict)
        )
    )


def _eval_clip(args):
    from t2i.clip.score import evaluate_clip

    out = args.out or f"{args.model.rstrip('/')}-eval"
    _print_metrics(evaluate_clip(args.model, args.data, args.split, args.n, out, args.classifier))
    print(f"metrics.json in {out}")


def _eval_upsampler(args):
    from t2i.cascade.settings import CascadeSettings
    from t2i.eval.upsampler import evaluate_upsampler

    out = args.out or f"{args.model.rstrip('/')}-upsampler-eval"
    settings = CascadeSettings.of_model(args.model).override(noise_level=args.noise_level)
    metrics = evaluate_upsampler(args.model, args.data, args.split, args.n, out, args.classifier, settings)
    _print_metrics(metrics)
    print(f"grid (bicubic, upsampler, originals) and metrics.json in {out}")


def _eval_train_classifier(args):
    from t2i.eval.classifier import ClassifierConfig, train_classifier

    config = ClassifierConfig(
        image_size=args.size, width=args.width, epochs=args.epochs, flip=not args.no_flip, seed=args.seed
    )
    info = train_classifier(args.data, args.out, config)
    for name, accuracy in info["test_accuracy"].items():
        print(f"{name:22s} {100 * accuracy:6.2f}%")
    print(f"mean accuracy on {info['test_images']} test images: {100 * info['test_mean_accuracy']:.2f}%")
    print(f"classifier saved to {args.out}")


def _suite(args):
    """What every `t2i eval` suite command reads: t2i.eval.alignment.Suite."""
    from t2i.eval.alignment import Suite

    return Suite(
        args.model,
        args.classifier,
        args.data,
        args.out,
        prompts_file=getattr(args, "prompts", None),
        n_prompts=args.n_prompts,
        n_per_prompt=args.n_per_prompt,
        seed=args.seed,
        clip_dir=getattr(args, "clip", None),
    )


def _eval_alignment(args):
    from t2i.eval.alignment import format_table, measure_alignment

    result = measure_alignment(_suite(args), settings=sampling_flags(args), inception_weights=args.inception_weights)
    references = result["references"]
    print(format_table(result, references))
    print(
        f"Fréchet distance (classifier features) to real test images: {result['frechet_distance']:.2f} "
        f"(real train vs test at the same size: {next(iter(references['frechet_real_train_vs_test'].values())):.2f})"
    )
    if "clip" in result:
        model, real, empty = result["clip"], references["real_test"]["clip"], references["empty_prompt"]["clip"]
        print(
            f"CLIP score {model['clip_score']:.1f} (real {real['clip_score']:.1f}, empty prompt "
            f"{empty['clip_score']:.1f}); R-precision {100 * model['r_precision']:.1f}% (real "
            f"{100 * real['r_precision']:.1f}%, empty prompt {100 * empty['r_precision']:.1f}%)"
        )
    if "inception" in result:
        print("standard FID {fid:.2f}, KID {kid:.4f} ± {kid_std:.4f}".format(**result["inception"]))
    else:
        from t2i.eval.fidelity import INCEPTION_WEIGHTS_HINT

        print(f"(no standard FID: {INCEPTION_WEIGHTS_HINT})")
    print(f"alignment.json and worst-prompts.png in {args.out}")


def _eval_word_swap(args):
    from t2i.eval.editing import measure_word_swaps

    swap = {"swap_steps": args.swap_steps, "self_swap_steps": args.self_swap_steps, "local_blend": args.local_blend}
    r = measure_word_swaps(_suite(args), **swap, settings=sampling_flags(args))
    print(
        f"{r['prompts']} prompts x {args.n_per_prompt} seeds; new colour found: {r['changed']:.1%} "
        f"(the edited prompt alone: {r['baseline_changed']:.1%}); other attributes kept: {r['kept']:.1%} "
        f"(alone: {r['baseline_kept']:.1%})"
    )
    for name in ("feature_distance", "feature_distance_outside_hair", "pixel_distance"):
        d = r[name]
        print(
            f"{name.replace('_', ' ')} to the source: edit {d['edit']:.3f}, alone {d['baseline']:.3f}, "
            f"two seeds of the source prompt {d['two_seeds']:.3f}"
        )
    ruler = r["rendered"]
    distances = "".join(
        f"; {name.replace('_', ' ')} {ruler[name]['edit']:.3f} (another face of the prompt "
        f"{ruler[name]['two_faces']:.3f})"
        for name in ("feature_distance", "pixel_distance")
    )
    print(
        f"the renderer's perfect edits (yardstick): new colour found {ruler['changed']:.1%}, "
        f"kept {ruler['kept']:.1%}{distances}"
    )
    print(f"word_swap.json and word_swap.png in {args.out}")


def _eval_rephrasing(args):
    from t2i.eval.rephrasing import measure_rephrasing

    r = measure_rephrasing(_suite(args))
    first = next(iter(r["suites"]))
    for name, value in r["suites"].items():
        gap = f" ({-100 * r['gap'][name]:+.1f} points)" if name != first else ""
        parts = [f"{part.replace('_', '-')} {r[part][name]:.1%}" for part in ("seen", "held_out") if name in r[part]]
        print(f"{name.replace('_', ' ')}: {value:.1%}{gap}" + (f" ({', '.join(parts)})" if parts else ""))
    print(f"real test images, what they show: {r['real_ceiling']:.1%}; rephrasing.json in {args.out}")


def _eval_attention(args):
    from t2i.eval.attention import measure_attention_placement

    result = measure_attention_placement(args.model, args.data, args.out, args.n_images, args.strength, args.seed)
    print("part        words  attention inside  floor (the part's area)  ratio")
    for part, r in result["parts"].items():
        print(f"{part:<11} {r['words']:>5}  {r['share_inside']:>16.1%}  {r['floor']:>23.1%}  {r['ratio']:>5.2f}")
    print(f"attention_placement.json in {args.out}")


def _eval_report(args):
    from t2i.eval.report import write_report

    path = write_report(_suite(args), ddpm_prompts=args.ddpm_prompts, save_defaults=args.save_defaults)
    print(f"report: {path}")


def _cache_latents(args):
    from t2i.autoencoder.cache import cache_latents

    out = cache_latents(
        args.autoencoder, args.data, args.out, flip=not args.no_flip, mixed_precision=args.mixed_precision
    )
    print(f"latent cache in {out}")


def _cache_tokens(args):
    from t2i.autoencoder.tokens import cache_tokens

    print(f"token cache in {cache_tokens(args.autoencoder, args.data, args.out, flip=not args.no_flip)}")


def _generate(args):
    import dataclasses
    import time

    from tqdm import tqdm

    from t2i.families import load_pipeline
    from t2i.generate import generate_images, read_prompts_file

    if (args.prompt is None) == (args.prompts_file is None):
        raise ValueError("give a PROMPT or --prompts-file FILE (one of the two)")
    one = [{"prompt": args.prompt, "negative_prompt": args.negative}]
    prompts = read_prompts_file(args.prompts_file) if args.prompts_file else one
    output_folder(args.out)  # checked before the model loads
    given = sampling_flags(args)
    if any(not entry["prompt"].strip() for entry in prompts):
        print('note: an empty prompt "" makes unconditional images (whatever the model draws most often)')
    pipe = load_pipeline(args.model)
    if pipe.takes_mixed_precision:
        pipe.mixed_precision = args.mixed_precision
    settings = pipe.defaults.override(**given)  # a flag of another family's setting: an error naming this one's
    start = time.perf_counter()
    with tqdm(desc="generate", unit="step") as bar:

        def progress(step: int, total: int) -> None:  # each prompt's denoising steps (one for a GAN)
            bar.total = bar.total or total * len(prompts)
            bar.update()

        paths = generate_images(pipe, prompts, args.out, args.n, args.seed, settings, callback=progress)
    print("\n".join(str(p) for p in paths))
    used = ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(settings).items())
    print(f"{len(prompts) * args.n} image(s) in {time.perf_counter() - start:.1f} s ({pipe.family}: {used})")


def _edit_pipeline(args):
    """The model's diffusion pipeline, its sampling settings from the flags, and its precision."""
    from t2i.families import load_pipeline

    pipe = load_pipeline(args.model)
    if not pipe.takes_edits:
        raise ValueError(f"--model {args.model}: a {pipe.family} model; editing takes a diffusion model")
    pipe.mixed_precision = args.mixed_precision
    return pipe, pipe.defaults.override(**sampling_flags(args))


def _edit(args):
    from t2i.editing import edit, read_image

    if args.image is None and args.source_prompt is None:
        raise ValueError("give --image FILE (image-to-image) or --source-prompt TEXT (word swap), or both")
    image = read_image(args.image) if args.image else None
    output_folder(args.out)
    pipe, settings = _edit_pipeline(args)
    strength = args.strength if image is not None else 1.0  # a word swap alone starts from noise
    paths = edit(
        pipe,
        args.prompt,
        args.out,
        image=image,
        strength=strength,
        source_prompt=args.source_prompt,
        swap_steps=args.swap_steps,
        seed=args.seed,
        settings=settings,
        local_blend=args.local_blend,
    )
    print("\n".join(str(p) for p in paths))


def _inpaint(args):
    from t2i.editing import edit, read_image

    image, mask = read_image(args.image), read_image(args.mask, "--mask")
    output_folder(args.out)
    pipe, settings = _edit_pipeline(args)
    paths = edit(
        pipe, args.prompt, args.out, image=image, strength=args.strength, mask=mask, seed=args.seed, settings=settings
    )
    print("\n".join(str(p) for p in paths))


def _attend(args):
    from t2i.editing import attend

    output_folder(args.out)
    pipe, settings = _edit_pipeline(args)
    print("\n".join(str(p) for p in attend(pipe, args.prompt, args.out, args.seed, settings)))


def _export(args):
    from t2i.export import export_diffusers, export_t2i_fp16

    if args.format == "diffusers":
        out = export_diffusers(args.model, args.out, args.scheduler or "dpm++")
        print(f"diffusers StableDiffusionPipeline folder: {out}")
    elif args.scheduler:
        raise ValueError(
            "--scheduler sets an exported diffusers pipeline's scheduler; a t2i-fp16 folder keeps the "
            "model's own sampling settings (sampling.json)"
        )
    else:
        print(f"t2i model folder with a float16 UNet: {export_t2i_fp16(args.model, args.out)}")


def _demo(args):
    from t2i.demo import run_demo

    run_demo(args.out, args.images)


def _serve(args):
    from t2i.serve import ServeLimits, serve

    limits = ServeLimits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ServeLimits)})
    key = args.api_key if args.api_key is not None else os.environ.get("T2I_API_KEY")
    serve(args.model, args.host, args.port, key, limits, args.live)


def _add_evaluation_inputs(p: argparse.ArgumentParser) -> None:
    """--model, --classifier, --data: what `t2i eval alignment` and `t2i eval report` measure, and with what."""
    p.add_argument("--model", default=str(DEMO_MODEL), help="model folder (the committed demo model)")
    p.add_argument("--classifier", default=str(CLASSIFIER), help="from `t2i eval train-classifier` (the committed one)")
    p.add_argument("--data", required=True, help="dataset with an attribute file: prompt suite, real references")
    p.add_argument("--clip", default=None, help="a CLIP (t2i train clip: RUN/clip) as second referee")


def settings_fields(classes: dict[str, type]) -> dict[str, tuple[dict, list[str]]]:
    """Each field of the settings classes ({who: class}) once: name -> (its description, who has it)."""
    fields = {}
    for who, cls in classes.items():
        for described in cls.describe():
            fields.setdefault(described["name"], (described, []))[1].append(who)
    return fields


def flag_of(described: dict) -> str:
    return "--" + (described.get("flag") or described["name"]).replace("_", "-")


def add_settings_flags(p: argparse.ArgumentParser, classes: dict[str, type], defaults: dict | None = None, only=None):
    """A flag per settings field (t2i.settings; `only`: those named), its type, range and help read from the
    field; its default `defaults`' value, else None (for sampling: the model's own). Choices are checked by
    `given_settings`, so that a bad one is a one-line error like every other."""
    for name, (d, who) in settings_fields(classes).items():
        if only is not None and name not in only:
            continue
        kind = {"int": int, "float": float}.get(d["type"], str)
        parse = bounded(kind, d["low"], d["high"]) if d["low"] is not None else kind
        default = (defaults or {}).get(name)
        where = f"{', '.join(who)}: " if len(classes) > 1 else ""
        choices = f" ({', '.join(d['choices'])})" if d["choices"] else ""
        help = f"{where}{d['help']}{choices}" + ("" if defaults else f" {MODEL_DEFAULT}")
        p.add_argument(flag_of(d), dest=name, type=parse, default=default, help=help)


def sampling_classes() -> dict[str, type]:
    """The sampling settings of every family (t2i.families), by the families that share each class."""
    from t2i.families import settings_classes

    by_class: dict[type, list[str]] = {}
    for family, cls in settings_classes().items():
        by_class.setdefault(cls, []).append(family)
    return {"/".join(families): cls for cls, families in by_class.items()}


def given_settings(args, classes: dict[str, type]) -> dict:
    """The settings flags as overrides (None where not given); a value outside a field's choices is named
    before any model loads."""
    given = {}
    for name, (d, _) in settings_fields(classes).items():
        value = given[name] = getattr(args, name)
        if value is not None and d["choices"] and value not in d["choices"]:
            raise ValueError(f"{flag_of(d)} must be one of {', '.join(d['choices'])}, got {value!r}")
    return given


def sampling_flags(args) -> dict:
    """The sampling flags as settings overrides."""
    return given_settings(args, sampling_classes())


def _add_precision_flag(p: argparse.ArgumentParser, what: str) -> None:
    from t2i.config import PRECISIONS

    p.add_argument(
        "--mixed-precision",
        default="auto",
        choices=PRECISIONS,
        help=f"{what} in this precision (auto: bf16 where the GPU or CPU runs it natively)",
    )


def _add_run_flags(p, config: str, out: str, data: str = "dataset folder or manifest") -> None:
    """--config, --data, --out: what every `t2i train` command takes."""
    p.add_argument("--config", required=True, help=config)
    p.add_argument("--data", required=True, help=data)
    p.add_argument("--out", required=True, help=out)


def _data_commands(commands) -> None:
    data = commands.add_parser("data", help="make, check and preview datasets").add_subparsers(
        dest="action", required=True
    )
    p = data.add_parser("synth", help="write synthetic captioned faces in the MM-CelebA-HQ layout")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=bounded(int, 1, 10**7), default=2000, help="number of images")
    p.add_argument("--size", type=bounded(int, 16, 4096), default=64, help="image side in pixels (32, 64, 128, ...)")
    p.add_argument("--seed", type=bounded(int, 0, SEEDS), default=0)
    p.add_argument("--workers", type=bounded(int, 1, 1024), default=None, help="processes (None: all cores)")
    p.add_argument("--parts", action="store_true", help="also each face's part map in CelebAMask-HQ-parts/")
    p.set_defaults(func=_data_synth)
    p = data.add_parser("shapes", help="the compositional benchmark: two coloured shapes, a held-out sentence shape")
    p.add_argument("--out", required=True, help="output folder (an imagefolder, and prompts.jsonl)")
    p.add_argument("--n", type=bounded(int, 1, 10**7), default=8000, help="number of images")
    p.add_argument("--held-out", type=bounded(int, 1, 72), default=24, help="combinations no image shows")
    p.add_argument("--seed", type=bounded(int, 0, SEEDS), default=0)
    p.set_defaults(func=_data_shapes)
    p = data.add_parser("preview", help="grid of images with a caption under each")
    p.add_argument("dir", help="dataset folder or manifest")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--n", type=bounded(int, 1, 1024), default=32, help="number of images")
    p.set_defaults(func=_data_preview)
    p = data.add_parser("check", help="scan a dataset and count unusable images and captions")
    p.add_argument("dir", help="dataset folder or manifest")
    p.add_argument("--size", type=bounded(int, 1, 65536), default=64, help="training size; smaller images are reported")
    p.set_defaults(func=_data_check)


def _train_commands(commands) -> None:
    train = commands.add_parser("train", help="train a stage").add_subparsers(dest="stage", required=True)
    run = "run folder: cache/, checkpoints/, samples/, logs/, model/"
    captions = "caption-embedding cache folder (None: OUT/cache); shared by runs"
    p = train.add_parser("autoencoder", help="stage 1: the image autoencoder (resumes from OUT/checkpoints)")
    _add_run_flags(p, "YAML config (configs/tiny.yaml, demo.yaml, celebahq256.yaml)", "run folder: ..., vae/")
    p.set_defaults(func=_train_autoencoder)
    p = train.add_parser("diffusion", help="stage 2: the text-conditioned UNet (resumes from OUT/checkpoints)")
    _add_run_flags(p, "YAML config", run, "dataset folder or manifest (its latents are cached first)")
    p.add_argument("--autoencoder", required=True, help="trained autoencoder folder")
    p.add_argument("--cache", default=None, help="latent cache folder (None: OUT/cache); reused when it matches")
    p.add_argument("--text-encoder", default=None, help="local BERT/CLIP folder (None: text.path, else MiniLM)")
    p.add_argument("--overfit-batch", action="store_true", help="sanity check: train on one batch only")
    p.set_defaults(func=_train_diffusion)
    p = train.add_parser("pixel-diffusion", help="milestone: DDPM in pixel space, no autoencoder (resumes)")
    _add_run_flags(p, "family: pixel-diffusion config (configs/milestones/pixel.yaml)", run)
    p.add_argument("--cache", default=None, help=captions)
    p.add_argument("--overfit-batch", action="store_true", help="sanity check: train on one batch only")
    p.set_defaults(func=_train_pixel_diffusion)
    p = train.add_parser("upsampler", help="milestone: a cascade's diffusion upsampler over a low-resolution base")
    _add_run_flags(p, "family: cascade config (configs/milestones/cascade.yaml)", run)
    p.add_argument("--base", required=True, help="the base model: a pixel-diffusion folder at upsampler.low_resolution")
    p.add_argument("--cache", default=None, help=captions)
    p.set_defaults(func=_train_upsampler)
    p = train.add_parser("clip", help="a CLIP dual encoder on the captions: text encoder and referee (resumes)")
    _add_run_flags(p, "CLIP config (configs/clip.yaml)", "run folder: checkpoints/, samples/, logs/, clip/")
    p.set_defaults(func=_train_clip)
    p = train.add_parser("gan", help="milestone: GAN-CLS, a text-conditional DCGAN (resumes from OUT/checkpoints)")
    _add_run_flags(p, "family: gan config (configs/milestones/gan.yaml)", run)
    p.add_argument("--cache", default=None, help=captions)
    p.set_defaults(func=_train_gan)
    p = train.add_parser("prior", help="milestone: a transformer or PixelCNN over image tokens (DALL-E, VQ-VAE)")
    tokens_first = "dataset folder or manifest (its tokens are cached first)"
    prior = "family: vq-transformer or pixelcnn config (configs/milestones/dalle.yaml, vq.yaml, pixelcnn.yaml)"
    _add_run_flags(p, prior, run, tokens_first)
    p.add_argument("--autoencoder", required=True, help="trained VQ autoencoder or dVAE (autoencoder.kind: vq, dvae)")
    p.add_argument("--cache", default=None, help="token and caption cache folder (None: OUT/cache)")
    p.set_defaults(func=_train_prior)

    p = commands.add_parser("distill", help="a 1-4 step student of a latent diffusion model (LCM; resumes)")
    p.add_argument("--model", default=str(DEMO_MODEL), help="the teacher: a latent diffusion model folder")
    p.add_argument("--data", required=True, help="the teacher's training data (its latents are cached first)")
    p.add_argument("--out", required=True, help="run folder: cache/, checkpoints/, samples/, logs/, model/")
    p.add_argument("--config", default=None, help="distillation config (configs/distill.yaml; None: the defaults)")
    p.add_argument("--cache", default=None, help="latent and caption cache folder (None: OUT/cache)")
    p.set_defaults(func=_distill)


def _eval_commands(commands) -> None:
    from t2i.settings import SWAP_STEPS

    evaluate = commands.add_parser("eval", help="measure a model").add_subparsers(dest="what", required=True)

    def on_a_split(name: str, help: str, *, model: str, split: str, out: str, classifier: str, data: str):
        """A command that measures one model on a dataset's split: --model, --data, --split, --out, --classifier."""
        p = evaluate.add_parser(name, help=help)
        p.add_argument("--model", required=True, help=model)
        p.add_argument("--data", required=True, help=data)
        p.add_argument("--split", default=split, choices=["train", "val", "test"])
        p.add_argument("--out", default=None, help=out)
        p.add_argument("--classifier", default=None, help=classifier)
        return p

    dataset = "dataset folder or manifest"
    p = on_a_split(
        "autoencoder", "PSNR, SSIM, reconstruction grid, VQ codebook usage",
        model="autoencoder folder (e.g. runs/ae/vae)",
        split="val", out="folder for the grid and metrics.json (None: MODEL-eval)",
        classifier="attribute classifier: its accuracy on the reconstructions", data=dataset,
    )  # fmt: skip
    p.set_defaults(func=_eval_autoencoder)
    p = on_a_split(
        "clip", "a CLIP as referee on real images: R-precision, CLIP score, zero-shot",
        model="CLIP folder (t2i train clip: RUN/clip)", split="test", out="folder for metrics.json (None: MODEL-eval)",
        classifier="attribute classifier: its accuracy beside the zero-shot one",
        data="dataset folder with an attribute file",
    )  # fmt: skip
    p.add_argument("--n", type=bounded(int, 2, 10**6), default=None, help="images (None: the whole split)")
    p.set_defaults(func=_eval_clip)
    p = on_a_split(
        "upsampler", "a cascade's upsampler on real low-resolution images, against bicubic",
        model="cascade folder (t2i train upsampler)", split="test",
        out="folder for the grid and metrics.json (None: MODEL-upsampler-eval)",
        classifier="attribute classifier: its accuracy on each", data=dataset,
    )  # fmt: skip
    p.add_argument("--n", type=bounded(int, 1, 100000), default=256, help="images (the split's first n)")
    p.add_argument("--noise-level", type=bounded(int, 0, 999), default=None, help="None: the model's default")
    p.set_defaults(func=_eval_upsampler)

    p = evaluate.add_parser("train-classifier", help="the attribute classifier that evaluation uses as its referee")
    p.add_argument(
        "--data", required=True, help='a dataset with attributes: an attribute file or "attributes" in its rows'
    )
    p.add_argument("--out", required=True, help="folder for classifier.safetensors and classifier.json")
    p.add_argument("--no-flip", action="store_true", help="no mirrored images in training (attributes name a side)")
    p.add_argument("--epochs", type=bounded(int, 1, 10**6), default=5, help="passes over the train split")
    p.add_argument("--width", type=bounded(int, 1, 4096), default=32, help="channels of the first stage")
    p.add_argument("--size", type=bounded(int, 16, 4096), default=64, help="image side the classifier works at")
    p.add_argument("--seed", type=bounded(int, 0, SEEDS), default=0)
    p.set_defaults(func=_eval_train_classifier)

    def suite(name: str, help: str, out: str, n_prompts: int = 64, n_per_prompt: int = 4):
        p = evaluate.add_parser(name, help=help)
        _add_evaluation_inputs(p)
        p.add_argument("--n-prompts", type=bounded(int, 2, 10**5), default=n_prompts, help="suite size")
        p.add_argument("--n-per-prompt", type=bounded(int, 1, 1024), default=n_per_prompt, help="images per prompt")
        p.add_argument("--seed", type=bounded(int, 0, SEEDS), default=0, help="seeds the suite and the images")
        p.add_argument("--out", default=out, help="folder for its results")
        return p

    prompts = 'JSONL: {"prompt": "...", "attributes": {"Eyeglasses": 1}} (rephrasing: and "rephrasing")'
    p = suite("alignment", "does the model draw what the prompt says? (attribute classifier)", "runs/eval-alignment")
    p.add_argument("--prompts", default=None, help=prompts)
    add_settings_flags(p, sampling_classes())
    p.add_argument("--inception-weights", default=None, help="local Inception-v3 weights: adds standard FID/KID")
    p.set_defaults(func=_eval_alignment)
    p = suite("word-swap", "do one-word edits change that attribute and keep the rest?", "runs/eval-word-swap")
    _add_edit_flags(p, swap_steps=SWAP_STEPS, self_swap_steps=0.0)
    p.add_argument("--local-blend", action="store_true", help="keep the source where the swapped words do not attend")
    add_settings_flags(p, sampling_classes())
    p.set_defaults(func=_eval_word_swap)
    p = suite("rephrasing", "alignment of prompts in held-out sentence shapes and rarer words", "runs/eval-rephrasing")
    p.add_argument("--prompts", default=None, help=prompts)
    p.set_defaults(func=_eval_rephrasing)
    p = suite("report", "Markdown report: classifier, alignment, samplers, guidance", "runs/eval-report", 32, 2)
    p.add_argument("--ddpm-prompts", type=bounded(int, 0, 10**4), default=6, help="prompts of the DDPM reference")
    p.add_argument("--save-defaults", action="store_true", help="write the picked settings to MODEL/sampling.json")
    p.set_defaults(func=_eval_report)

    p = evaluate.add_parser("attention", help="do a prompt's words attend to their part of the face? (part maps)")
    p.add_argument("--model", default=str(DEMO_MODEL), help="diffusion model folder (the committed demo model)")
    p.add_argument("--data", required=True, help="synthetic faces written with `t2i data synth --parts`")
    p.add_argument("--n-images", type=bounded(int, 1, 10**5), default=64, help="held-out images to redraw")
    p.add_argument("--strength", type=bounded(float, 0.05, 1), default=0.5, help="image-to-image strength")
    p.add_argument("--seed", type=bounded(int, 0, SEEDS), default=0, help="image k uses seed + k")
    p.add_argument("--out", default="runs/eval-attention", help="folder for attention_placement.json")
    p.set_defaults(func=_eval_attention)


def _cache_commands(commands) -> None:
    cache = commands.add_parser("cache", help="precompute training inputs").add_subparsers(dest="what", required=True)
    for name, help, autoencoder, func in (
        ("latents", "encode the dataset once into sharded safetensors (resumable)", "autoencoder", _cache_latents),
        ("tokens", "an autoencoder's code indices for every image and its flip", "VQ or dVAE", _cache_tokens),
    ):
        p = cache.add_parser(name, help=help)
        p.add_argument("--autoencoder", required=True, help=f"{autoencoder} folder")
        p.add_argument("--data", required=True, help="dataset folder or manifest")
        p.add_argument("--out", required=True, help="cache folder (the token cache holds the latent cache too)")
        p.add_argument("--no-flip", action="store_true", help=f"do not store the {name} of flipped images")
        if name == "latents":
            _add_precision_flag(p, "encode")
        p.set_defaults(func=func)


def _drawing_flags(p, model_help: str = "model folder (the committed demo model)") -> None:
    """--model, the sampling settings, --seed, --out, --mixed-precision: what every drawing command takes."""
    p.add_argument("--model", default=str(DEMO_MODEL), help=model_help)
    add_settings_flags(p, sampling_classes())
    p.add_argument("--seed", type=bounded(int, 0, SEEDS), default=0, help="seed of the first image; image k: seed + k")
    p.add_argument("--out", default="outputs", help="folder for the PNGs")
    _add_precision_flag(p, "diffusion models: run the networks")


def _add_edit_flags(p, **defaults) -> None:
    """The edit settings named in `defaults` (t2i.diffusion.settings.EditSettings), with those defaults."""
    from t2i.diffusion.settings import EditSettings

    add_settings_flags(p, {"edit": EditSettings}, defaults, only=defaults)


def _drawing_commands(commands) -> None:
    from t2i.settings import IMAGE_TO_IMAGE_STRENGTH, INPAINTING_STRENGTH, SWAP_STEPS

    p = commands.add_parser("generate", help="images from text with a trained model (PNG with parameters)")
    p.add_argument("prompt", nargs="?", help='a description, e.g. "She has blond hair."; "" = unconditional')
    p.add_argument("--negative", default="", help="negative prompt (what to steer away from)")
    p.add_argument("--prompts-file", default=None, help="many prompts: a line each, or JSONL {prompt, negative_prompt}")
    p.add_argument("--n", type=bounded(int, 1, 64), default=1, help="images per prompt (a grid is written when > 1)")
    _drawing_flags(p)
    p.set_defaults(func=_generate)

    diffusion_model = "diffusion model folder (the committed demo model)"
    p = commands.add_parser("edit", help="image-to-image (--image, --strength) and word swaps (--source-prompt)")
    p.add_argument("prompt", help="what the image should show")
    p.add_argument("--image", default=None, help="start from this image (resized and centre-cropped)")
    p.add_argument("--source-prompt", default=None, help='a word swap: the prompt to edit, e.g. "She has blond hair."')
    _add_edit_flags(p, strength=IMAGE_TO_IMAGE_STRENGTH, swap_steps=SWAP_STEPS)
    p.add_argument(
        "--local-blend", action="store_true", help="a word swap keeps the source where the words do not look"
    )
    _drawing_flags(p, diffusion_model)
    p.set_defaults(func=_edit)
    p = commands.add_parser("inpaint", help="repaint the white part of --mask in --image")
    p.add_argument("prompt", help="what the image should show")
    p.add_argument("--image", required=True, help="the image to repaint")
    p.add_argument("--mask", required=True, help="white (or light) where the image is repainted, black where kept")
    _add_edit_flags(p, strength=INPAINTING_STRENGTH)
    _drawing_flags(p, diffusion_model)
    p.set_defaults(func=_inpaint)
    p = commands.add_parser("attend", help="an image and, for every word of its prompt, where that word looked")
    p.add_argument("prompt", help="what the image should show")
    _drawing_flags(p, diffusion_model)
    p.set_defaults(func=_attend)


def _model_commands(commands) -> None:
    from t2i.settings import ServeLimits

    p = commands.add_parser("export", help="write a model in another library's format")
    p.add_argument("out", help="output folder")
    p.add_argument(
        "--format",
        default="diffusers",
        choices=["diffusers", "t2i-fp16"],
        help="diffusers: a StableDiffusionPipeline folder; t2i-fp16: this model with a float16 UNet",
    )
    p.add_argument("--model", default=str(DEMO_MODEL), help="model folder (the committed demo model)")
    p.add_argument("--scheduler", default=None, help="the exported diffusers pipeline's scheduler (None: dpm++)")
    p.set_defaults(func=_export)

    p = commands.add_parser("serve", help="a web page and an HTTP API over one model")
    p.add_argument("--model", default=str(DEMO_MODEL), help="model folder (the committed demo model)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=bounded(int, 1, 65535), default=7860)
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (or set T2I_API_KEY)")
    p.add_argument("--live", default=None, help="a distilled student (t2i distill) that draws as you type on the page")
    add_settings_flags(p, {"limits": ServeLimits}, dataclasses.asdict(ServeLimits()))
    p.set_defaults(func=_serve)

    p = commands.add_parser("demo", help="every stage from scratch on 32x32 faces: data to images in under 10 minutes")
    p.add_argument("--out", default="runs/demo", help="folder for everything the demo makes")
    p.add_argument("--images", type=bounded(int, 40, 10**6), default=2500, help="synthetic faces to train on")
    p.set_defaults(func=_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="t2i", description="Text-to-image latent diffusion on captioned faces.")
    parser.add_argument(
        "--threads",
        type=bounded(int, 1, 1024),
        default=None,
        help="CPU threads (None: the cores left free by other work)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_data_commands, _train_commands, _eval_commands, _cache_commands, _drawing_commands, _model_commands):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure is one line on stderr and a non-zero exit code, never a traceback
    (T2I_DEBUG=1 shows it): 2 for bad input, 1 for anything unexpected, 130 when stopped with Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    threads = args.threads
    if threads is None and argv is None:  # the `t2i` command (not a call from Python): the cores left free
        from t2i.devices import free_cores

        threads = free_cores()
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        return args.func(args) or 0
    except Exception as error:
        from t2i.checkpoint import TrainingStopped

        if os.environ.get("T2I_DEBUG"):
            raise
        if isinstance(error, TrainingStopped):
            print(f"\n{error}", file=sys.stderr)  # below the progress bar's line
            return 130
        if isinstance(error, ValueError | OSError | FloatingPointError):
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"error: unexpected {type(error).__name__}: {error} (T2I_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (what was written is kept: caches and checkpoints resume on a re-run)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
