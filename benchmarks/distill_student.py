"""A distilled student (t2i distill) against its teacher, side by side in one run: alignment and Fréchet distance on
the same prompt suite and seeds (`t2i eval alignment`'s default suite), images per second at the same batch, and
the live page's answer to a keystroke (its 100 ms debounce plus one 1-step image).

    python benchmarks/distill_student.py --student runs/distill-demo/model --classifier weights/classifier
        --data data/faces20k [--teacher weights/demo] [--steps 1 2 4] [--guidance 3 5 8] [--smoke]

The student's guidance is its input: each (steps, guidance) pair is scored, the teacher at its own defaults.
"""

from __future__ import annotations

import argparse
import time

import torch

from t2i.config import saved_split_fractions
from t2i.eval.alignment import Suite, evaluate_setting, load_real_images
from t2i.eval.classifier import load_classifier
from t2i.pipeline import Text2ImagePipeline

from common import DEMO_MODEL, interleaved, ratio, save, spread

DEBOUNCE_S = 0.1  # t2i/web/index.html's scheduleLive


def alignment_rows(teacher, student, args) -> dict:
    """Teacher at its defaults, the student at each (steps, guidance): alignment, seen, held-out, Fréchet."""
    classifier = load_classifier(args.classifier)
    fractions = saved_split_fractions(args.teacher)
    suite = Suite(args.teacher, args.classifier, args.data, "", n_prompts=args.prompts, n_per_prompt=args.n_per_prompt)
    cases = suite.default_cases(classifier.attributes, fractions)
    real = load_real_images(args.data, teacher.image_size, n_train=8, split_fractions=fractions)
    _, real_features = classifier.predict(real.test_images)

    def scored(pipe, settings) -> dict:
        start = time.perf_counter()
        result, _ = evaluate_setting(
            pipe, classifier, cases, real_features, n_per_prompt=args.n_per_prompt, settings=settings, seed=0
        )
        keys = ("alignment", "seen", "held_out", "frechet_distance")
        return {k: result[k] for k in keys if k in result} | {"seconds": time.perf_counter() - start}

    rows = {"teacher": scored(teacher, teacher.defaults) | {"settings": vars(teacher.defaults)}}
    for steps in args.steps:
        for guidance in args.guidance:
            settings = student.defaults.override(steps=steps, guidance=guidance)
            row = scored(student, settings)
            share = {k: row[k] / rows["teacher"][k] for k in ("alignment", "seen", "held_out") if k in row}
            fd = row["frechet_distance"] / rows["teacher"]["frechet_distance"]
            rows[f"student {steps} step(s), guidance {guidance:g}"] = row | {"of_teacher": share, "frechet_ratio": fd}
    return rows


def throughput(teacher, student, args) -> dict:
    """Images per second, interleaved: the teacher at its defaults, the student at each of its steps."""
    prompts = ["This woman has blond hair and wears eyeglasses. She is smiling."] * args.batch
    runs = {"teacher": lambda: teacher(prompts, output_type="pt")}
    for steps in args.steps:
        runs[f"student {steps}"] = lambda steps=steps: student(prompts, num_inference_steps=steps, output_type="pt")
    with torch.inference_mode():
        times = interleaved(runs, args.repeats)
    result = {name: {"images_per_s": args.batch / spread(t)["median"]} for name, t in times.items()}
    for steps in args.steps:
        result[f"student {steps}"]["speedup_over_teacher"] = ratio(times[f"student {steps}"], times["teacher"])
    with torch.inference_mode():  # the live page: one image, one step, after the debounce
        one = interleaved({"live": lambda: student(prompts[0], num_inference_steps=1, output_type="pil")}, args.repeats)
    result["live_keystroke_s"] = spread([DEBOUNCE_S + s for s in one["live"]])
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default=str(DEMO_MODEL))
    parser.add_argument("--student", required=True, help="t2i distill's model folder")
    parser.add_argument("--classifier", required=True)
    parser.add_argument("--data", required=True, help="the dataset the suite is drawn from")
    parser.add_argument("--prompts", type=int, default=64, help="prompts of the default suite")
    parser.add_argument("--n-per-prompt", type=int, default=4)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--guidance", type=float, nargs="+", default=[3.0, 5.0, 8.0])
    parser.add_argument("--batch", type=int, default=8, help="images per call for the throughput")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="seconds-long check that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.prompts, args.n_per_prompt, args.steps, args.guidance, args.batch, args.repeats = 2, 1, [1], [5.0], 2, 1
    teacher, student = (Text2ImagePipeline.from_pretrained(folder) for folder in (args.teacher, args.student))
    result = {"teacher": args.teacher, "student": args.student, "threads": torch.get_num_threads()}
    result["throughput"] = throughput(teacher, student, args)
    result["alignment"] = alignment_rows(teacher, student, args)
    save("distill_student", result, args.smoke)


if __name__ == "__main__":
    main()
