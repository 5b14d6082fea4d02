"""Alignment: the share of the attributes a prompt asserts that the classifier finds in the image.

    prompt ─► attributes_in_caption ─► asserted {attribute: ±1}
    prompt ─► pipeline ─► image ─► classifier ─► predicted {attribute: ±1}
    alignment = #(asserted == predicted) / #asserted          (pooled over a prompt suite)

References: real test images scored against their own captions (the ceiling: what a perfect generator
would get with this classifier), the same images passed through the model's autoencoder, x̂ = D(E(x))
(what a perfect UNet would get through this decoder), and images generated from the empty prompt scored
against the suite's assertions (the floor: what ignoring the text gets).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from t2i.autoencoder.model import reconstruct
from t2i.clip.score import ClipReferee, referee_scores
from t2i.config import saved_split_fractions
from t2i.data.captions import PHRASES, attributes_in_caption, write_caption
from t2i.data.check import list_records, scan_dataset
from t2i.data.datasets import ImageCaptionDataset, split_of
from t2i.data.synthetic import sample_attributes
from t2i.eval.classifier import AttributeClassifier, load_classifier
from t2i.eval.fidelity import frechet_distance, inception_fid_kid
from t2i.grid import make_grid, to_pil


@dataclass
class Suite:
    """What every suite evaluation (`t2i eval alignment`, `rephrasing`, `word-swap`, `report`) reads and where it
    writes: the model, the referee, the dataset the default suite is drawn from, the suite's size and seed."""

    model_dir: str | Path
    classifier_dir: str | Path
    data_dir: str | Path
    out: str | Path
    prompts_file: str | Path | None = None  # JSONL prompts in place of the default suite (alignment, rephrasing)
    clip_dir: str | Path | None = None  # a CLIP (t2i train clip) as second referee: CLIP score, R-precision
    n_prompts: int = 64  # prompts of the default suite, half of them held-out combinations
    n_per_prompt: int = 4  # images per prompt, image k from seed + k
    seed: int = 0  # seeds the suite and the images

    def default_cases(self, scorable: list[str], split_fractions) -> list[PromptCase]:
        """The default suite (`default_suite`) of this size and seed, from the model's test split."""
        return default_suite(
            self.data_dir, self.n_prompts, seed=self.seed, scorable=scorable, split_fractions=split_fractions
        )


@dataclass
class PromptCase:
    prompt: str
    attributes: dict[str, int]  # what the prompt asserts: attribute -> 1 (present) or -1 (absent)
    held_out: bool | None = None  # no training caption names this whole combination (None: not checked)


_BITS = {(a, 1): i for i, a in enumerate(PHRASES)} | {("Male", 1): len(PHRASES), ("Male", -1): len(PHRASES) + 1}


def combination_mask(attributes: dict[str, int]) -> int:
    """One bit per asserted phrase attribute, one for each sex: combinations compare as bit sets."""
    return sum(1 << _BITS[item] for item in attributes.items() if item in _BITS)


def training_captions(data_dir: str | Path, split_fractions=(0.9, 0.05, 0.05)) -> list[str]:
    """Every caption of every training-split image (all of them, not only those a run trained on)."""
    _, records, _ = list_records(Path(data_dir))
    return [c for r in records if split_of(r.id, split_fractions) == "train" for c in r.captions]


def _caption_naming_all(chosen: dict[str, int], rng: np.random.Generator) -> tuple[str, dict[str, int]]:
    """A caption in the dataset's templates that names every chosen attribute (templates name a random subset)."""
    for _ in range(200):
        caption = write_caption(chosen, rng)
        asserted = attributes_in_caption(caption)
        if all(asserted.get(a) == v for a, v in chosen.items()):
            return caption, asserted
    raise RuntimeError(f"no template names all of {sorted(chosen)}")


def default_suite(
    data_dir: str | Path,
    n_prompts: int = 64,
    attributes_per_prompt: int = 4,
    seed: int = 0,
    scorable=None,
    split_fractions=(0.9, 0.05, 0.05),
) -> list[PromptCase]:
    """A seeded suite of attribute combinations written with the dataset's caption templates.

    Each prompt names `attributes_per_prompt` attributes and the sex. Half are combinations some training
    caption names together (a subset of a real caption's attributes); half are held out: drawn from the
    renderer's attribute sampler (so they are plausible faces) and kept only when no training caption
    names the whole combination. (Combinations of images, not captions, would not do: the synthetic
    attributes are nearly independent, so almost every plausible combination of 4-6 occurs in some
    training image.)
    """
    captions = training_captions(data_dir, split_fractions)
    caption_masks = np.array([combination_mask(attributes_in_caption(c)) for c in captions], dtype=np.uint64)
    rng = np.random.default_rng(seed)
    scorable = set(scorable or PHRASES)
    cases: list[PromptCase] = []
    want_held_out = False
    for _ in range(1000 * n_prompts):
        if len(cases) == n_prompts:
            break
        if want_held_out:
            values = sample_attributes(rng)
        else:
            values = attributes_in_caption(captions[rng.integers(len(captions))])
        present = [a for a in PHRASES if values.get(a) == 1 and a in scorable]
        if len(present) < attributes_per_prompt or "Male" not in values:
            continue
        picked = [present[i] for i in rng.permutation(len(present))[:attributes_per_prompt]]
        chosen = {"Male": values["Male"]} | {a: 1 for a in picked}
        mask = np.uint64(combination_mask(chosen))
        if want_held_out and ((caption_masks & mask) == mask).any():
            continue
        caption, asserted = _caption_naming_all(chosen, rng)
        cases.append(PromptCase(caption, asserted, held_out=want_held_out))
        want_held_out = not want_held_out
    if len(cases) < n_prompts:
        raise RuntimeError(f"found only {len(cases)} of {n_prompts} prompt combinations")
    return cases


def read_prompt_lines(path: str | Path, texts: tuple[str, ...] = ("prompt",)) -> list[tuple[int, dict, dict]]:
    """(line number, entry, attributes) of each JSONL line {"prompt": "...", (the other `texts`,) "attributes":
    {"Eyeglasses": 1, "Smiling": -1}}; without "attributes", they are read from the prompt with the dataset's
    phrase table. A ValueError names the file and line of anything else."""
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in texts):
            shape = ", ".join(f'"{k}": "..."' for k in texts)
            raise ValueError(f'{path}:{number}: expected {{{shape}, "attributes": {{...}}}}')
        attributes = entry.get("attributes") or attributes_in_caption(entry["prompt"])
        bad = {a: v for a, v in attributes.items() if v not in (1, -1)}
        if bad:
            raise ValueError(f"{path}:{number}: attributes must be names with values 1 or -1, got {bad}")
        entries.append((number, entry, dict(attributes)))
    if not entries:
        raise ValueError(f"{path}: no prompts")
    return entries


def read_prompt_suite(path: str | Path) -> list[PromptCase]:
    """A prompt suite file (read_prompt_lines), each line's "held_out" kept when given."""
    return [PromptCase(e["prompt"], attributes, e.get("held_out")) for _, e, attributes in read_prompt_lines(path)]


def check_scorable(cases: list[PromptCase], classifier: AttributeClassifier, path: str | Path) -> None:
    """A ValueError when no prompt of a file asserts an attribute the classifier reads (nothing would be scored)."""
    named = {a for case in cases for a in case.attributes}
    if not named & set(classifier.attributes):
        raise ValueError(
            f"{path}: the prompts assert {sorted(named)[:6]}, none of which the classifier reads "
            f"({classifier.attributes[:6]} ...): train one on this data with `t2i eval train-classifier`"
        )


def score(predicted: torch.Tensor, classifier_attributes: list[str], asserted: list[dict[str, int]]) -> dict:
    """Hits and counts per attribute for images (N, A) in {1, -1} against what each image's prompt asserts."""
    hits: dict[str, int] = {}
    counts: dict[str, int] = {}
    per_image = []
    for values, claims in zip(predicted.tolist(), asserted, strict=True):
        image_hits = image_counts = 0
        for attribute, value in claims.items():
            if attribute not in classifier_attributes:
                continue  # the classifier cannot see it (e.g. not rendered): not scored
            hit = int(values[classifier_attributes.index(attribute)] == value)
            hits[attribute] = hits.get(attribute, 0) + hit
            counts[attribute] = counts.get(attribute, 0) + 1
            image_hits, image_counts = image_hits + hit, image_counts + 1
        per_image.append(image_hits / image_counts if image_counts else float("nan"))
    total = sum(counts.values())
    return {
        "alignment": sum(hits.values()) / total if total else float("nan"),
        "assertions": total,
        "per_attribute": {a: hits[a] / counts[a] for a in sorted(counts)},
        "per_image": per_image,
    }


@torch.no_grad()
def generate_for_suite(
    pipe,
    cases: list[PromptCase],
    n_per_prompt: int,
    settings,
    seed: int,
    batch_prompts: int = 16,
    empty_prompt: bool = False,
    progress=None,
) -> torch.Tensor:
    """Images (len(cases) · n, 3, H, W) in [-1, 1] from any family's pipeline at its sampling `settings`;
    image j gets seed + j. empty_prompt: generate from ""."""
    images = []
    for start in range(0, len(cases), batch_prompts):
        prompts = ["" if empty_prompt else c.prompt for c in cases[start : start + batch_prompts]]
        images.append(
            pipe(
                prompts,
                seed=seed + start * n_per_prompt,
                num_images_per_prompt=n_per_prompt,
                output_type="pt",
                settings=settings,
            ).clamp(-1, 1)
        )
        if progress is not None:
            progress(len(prompts) * n_per_prompt)
    return torch.cat(images)


def real_ceiling(attributes: list[str], predicted: torch.Tensor, claims: list[list[dict[str, int]]]) -> dict:
    """Alignment of real images (the classifier's values `predicted`) with each of what they are known to show
    (RealImages.test_claims)."""
    pairs = [(i, claim) for i, image_claims in enumerate(claims) for claim in image_claims]
    return score(predicted[[i for i, _ in pairs]], attributes, [a for _, a in pairs])


def empty_prompt_floor(classifier: AttributeClassifier, empty_images: torch.Tensor, cases: list[PromptCase]) -> dict:
    """Alignment of images generated from "" against every prompt's assertions (text ignored)."""
    predicted, _ = classifier.predict(empty_images)
    rows = predicted.repeat(len(cases), 1)
    claims = [c.attributes for c in cases for _ in range(len(predicted))]
    return score(rows, classifier.attributes, claims)


def summarize(cases: list[PromptCase], n_per_prompt: int, predicted: torch.Tensor, attributes: list[str]) -> dict:
    """Overall, per attribute, seen versus held-out, and per prompt."""
    claims = [c.attributes for c in cases for _ in range(n_per_prompt)]
    result = score(predicted, attributes, claims)
    for name, flag in (("seen", False), ("held_out", True)):
        rows = [k * n_per_prompt + j for k, c in enumerate(cases) if c.held_out is flag for j in range(n_per_prompt)]
        if rows:
            result[name] = score(predicted[rows], attributes, [claims[i] for i in rows])["alignment"]
    per_prompt = np.array(result.pop("per_image")).reshape(len(cases), n_per_prompt).mean(1)
    result["per_prompt"] = [asdict(c) | {"alignment": float(a)} for c, a in zip(cases, per_prompt, strict=True)]
    return result


REFERENCE_COLUMNS = {"real": "real_test", "real→AE": "real_through_autoencoder", "empty": "empty_prompt"}


def format_table(result: dict, references: dict) -> str:
    """The terminal table: one row per attribute (generated, then each reference), then the totals."""
    columns = {name: references[key] for name, key in REFERENCE_COLUMNS.items() if key in references}
    lines = [f"{'attribute':22s} {'generated':>9s}" + "".join(f" {name:>8s}" for name in columns)]
    for attribute, value in result["per_attribute"].items():
        cells = "".join(f" {100 * r['per_attribute'].get(attribute, float('nan')):7.1f}%" for r in columns.values())
        lines.append(f"{attribute:22s} {100 * value:8.1f}%{cells}")
    cells = "".join(f" {100 * r['alignment']:7.1f}%" for r in columns.values())
    lines.append(f"{'ALL':22s} {100 * result['alignment']:8.1f}%{cells}")
    for name in ("seen", "held_out"):
        if name in result:
            lines.append(f"{name + ' combinations':22s} {100 * result[name]:8.1f}%")
    return "\n".join(lines)


@dataclass
class RealImages:
    """Real images that the generated ones are compared with: the test split (with captions) and a train sample."""

    test_images: torch.Tensor  # (N, 3, H, W) in [-1, 1]
    test_captions: list[list[str]]
    test_claims: list[list[dict[str, int]]]  # per image: its attributes when its record has them, else those each
    # of its captions asserts (the faces' phrase table)
    train_images: torch.Tensor  # a seeded sample of the train split, for the real-vs-real Fréchet floor


def load_real_images(
    data_dir: str | Path, size: int, n_train: int = 512, seed: int = 0, split_fractions=(0.9, 0.05, 0.05)
) -> RealImages:
    """The test split and a seeded train sample, split as the model was (`split_fractions` from its config)."""
    report = scan_dataset(data_dir, size)  # once, for both splits
    test, train = (
        ImageCaptionDataset(data_dir, size, split, random_caption=False, split_fractions=split_fractions, report=report)
        for split in ("test", "train")
    )
    picked = np.random.default_rng(seed).permutation(len(train))[:n_train]
    return RealImages(
        torch.stack([test.item(i, 0)["pixel_values"] for i in range(len(test))]),
        [r.captions for r in test.records],
        [[r.attributes] if r.attributes else [attributes_in_caption(c) for c in r.captions] for r in test.records],
        torch.stack([train.item(int(i), 0)["pixel_values"] for i in picked]),
    )


def evaluate_setting(
    pipe,
    classifier: AttributeClassifier,
    cases: list[PromptCase],
    real_features: torch.Tensor,
    *,
    n_per_prompt: int,
    settings,
    seed: int,
    progress=None,
    clip=None,
) -> tuple[dict, torch.Tensor]:
    """Generate for the suite at one sampling setting; alignment (overall, per attribute, seen/held-out, per
    prompt) and the Fréchet distance of the images to the real test features (and, with a `clip` referee, the
    CLIP score and R-precision of the images against the suite's prompts). Returns (result, images)."""
    images = generate_for_suite(pipe, cases, n_per_prompt, settings, seed, progress=progress)
    predicted, features = classifier.predict(images)
    result = summarize(cases, n_per_prompt, predicted, classifier.attributes)
    result["frechet_distance"] = frechet_distance(features, real_features)
    if clip is not None:
        result["clip"] = referee_scores(clip, images, [case.prompt for case in cases], n_per_prompt)
    result["setting"] = asdict(settings) | {"seed": seed, "n_per_prompt": n_per_prompt, "images": len(images)}
    return result, images


def references(
    pipe,
    classifier: AttributeClassifier,
    cases: list[PromptCase],
    real: RealImages,
    *,
    test_predicted: tuple[torch.Tensor, torch.Tensor],
    n_empty: int,
    settings,
    seed: int,
    fd_sizes: list[int],
    clip=None,
) -> dict:
    """The ceiling (real test images with their captions), the same through the model's autoencoder (a latent
    model's), the floor (empty-prompt images at `settings`) and the real train-versus-test Fréchet distance for
    each generated-sample size in fd_sizes. test_predicted: the classifier's (values, features) of real.test_images."""
    test_values, test_features = test_predicted
    ceiling = real_ceiling(classifier.attributes, test_values, real.test_claims)
    ceiling.pop("per_image")
    found = {"real_test": ceiling}
    if pipe.autoencoder is not None:
        reconstructed_values, _ = classifier.predict(reconstruct(pipe.autoencoder, real.test_images))
        found["real_through_autoencoder"] = real_ceiling(classifier.attributes, reconstructed_values, real.test_claims)
        found["real_through_autoencoder"].pop("per_image")
    if "guidance" in asdict(settings):  # ε = ε_u + g (ε_c − ε_u) is ε_u for "": g = 1 gives it at half the cost
        settings = settings.override(guidance=1.0)
    empty = generate_for_suite(pipe, cases[:n_empty], 1, settings, seed, empty_prompt=True)
    found["empty_prompt"] = empty_prompt_floor(classifier, empty, cases)
    found["empty_prompt"].pop("per_image")
    if clip is not None:  # the CLIP referee's ceiling (real images, their captions) and floor (the empty prompt)
        found["real_test"]["clip"] = referee_scores(clip, real.test_images, [c[0] for c in real.test_captions])
        found["empty_prompt"]["clip"] = referee_scores(clip, empty, [case.prompt for case in cases[:n_empty]])
    _, train_features = classifier.predict(real.train_images)
    found["frechet_real_train_vs_test"] = {n: frechet_distance(train_features[:n], test_features) for n in fd_sizes}
    return found


def worst_prompts_grid(result: dict, images: torch.Tensor, n_per_prompt: int, path: str | Path, k: int = 8) -> None:
    """The k lowest-scoring prompts: their images in a row each, the prompt and its score under the first."""
    ranked = sorted(range(len(result["per_prompt"])), key=lambda i: result["per_prompt"][i]["alignment"])[:k]
    pictures, captions = [], []
    for i in ranked:
        case = result["per_prompt"][i]
        for j in range(n_per_prompt):
            pictures += to_pil(images[i * n_per_prompt + j : i * n_per_prompt + j + 1])
            captions.append(f"{100 * case['alignment']:.0f}%: {case['prompt']}" if j == 0 else "")
    make_grid(pictures, captions, cols=n_per_prompt, cell=128, text_lines=5).save(path)


def measure_alignment(
    suite: Suite, *, settings: dict | None = None, n_empty: int = 64, inception_weights: str | Path | None = None
) -> dict:
    """`t2i eval alignment` for a model of any family: generate for a prompt suite, score it with the classifier,
    compare with the real-image ceiling and the empty-prompt floor; write alignment.json and worst-prompts.png
    to suite.out. `settings`: sampling settings of the model's family to use in place of its defaults."""
    from t2i.families import load_pipeline

    pipe = load_pipeline(suite.model_dir)
    settings = pipe.defaults.override(**(settings or {}))
    classifier = load_classifier(suite.classifier_dir)
    fractions = saved_split_fractions(suite.model_dir)  # score on images the model did not train on
    if suite.prompts_file:
        cases = read_prompt_suite(suite.prompts_file)
        check_scorable(cases, classifier, suite.prompts_file)
    else:
        cases = suite.default_cases(classifier.attributes, fractions)
    n, seed = suite.n_per_prompt, suite.seed
    real = load_real_images(
        suite.data_dir, pipe.image_size, n_train=len(cases) * n, seed=seed, split_fractions=fractions
    )
    test_values, test_features = classifier.predict(real.test_images)
    clip = ClipReferee(suite.clip_dir) if suite.clip_dir else None
    with tqdm(total=len(cases) * n, desc="generate") as bar:
        result, images = evaluate_setting(
            pipe, classifier, cases, test_features, n_per_prompt=n, settings=settings, seed=seed, progress=bar.update,
            clip=clip,
        )  # fmt: skip
    result["references"] = references(
        pipe,
        classifier,
        cases,
        real,
        test_predicted=(test_values, test_features),
        n_empty=n_empty,
        settings=settings,
        seed=seed,
        fd_sizes=[len(images)],
        clip=clip,
    )
    result["model"], result["classifier"], result["family"] = (
        str(suite.model_dir),
        str(suite.classifier_dir),
        pipe.family,
    )
    result["split_fractions"] = list(fractions)
    if inception_weights:
        result["inception"] = inception_fid_kid(real.test_images, images, inception_weights)
    out = Path(suite.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "alignment.json").write_text(json.dumps(result, indent=2))
    worst_prompts_grid(result, images, n, out / "worst-prompts.png")
    return result
