"""Write a copy of a config whose training section runs for a given time at a measured rate.

    python benchmarks/gpu/fit_steps.py CONFIG --section autoencoder_training --log PROBE.log \
        --seconds 150 --out RUN.yaml

The rate is the last `img_s=` a probe run printed on its progress bar (runs measured side by side, as they will
train). The cadences follow the length: a checkpoint and a grid every quarter, warm-up at most a tenth;
`--disc-from F` switches the PatchGAN on for the last 1 - F of an autoencoder's steps.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from t2i.config import load_config, save_config


def probe_rate(log: Path) -> float:
    rates = re.findall(r"img_s=([0-9.]+)", log.read_text(errors="replace"))
    if not rates:
        raise SystemExit(f"{log}: the probe printed no img_s (did it fail?)")
    return float(rates[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--section", required=True, choices=["autoencoder_training", "diffusion_training"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=None, help="a fixed length (the probe's) instead of a time")
    parser.add_argument("--log", type=Path, help="probe log to read the rate from")
    parser.add_argument("--seconds", type=float, help="training time to fill")
    parser.add_argument("--disc-from", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="another batch (a tiny trial on a CPU)")
    args = parser.parse_args()
    config = load_config(args.config)
    section = getattr(config, args.section)
    section.batch_size = args.batch_size or section.batch_size
    if args.steps is None:
        rate = probe_rate(args.log)
        args.steps = max(20, int(args.seconds * rate / section.batch_size))
        print(f"{args.out}: {rate:.0f} img/s measured -> {args.steps} steps in {args.seconds:.0f} s")
    section.steps = args.steps
    section.warmup_steps = min(section.warmup_steps, args.steps // 10)
    section.checkpoint_every = section.sample_every = max(1, args.steps // 4)
    section.log_every = min(section.log_every, max(1, args.steps // 10))
    if args.disc_from is not None:
        section.disc_start = int(args.disc_from * args.steps)
    save_config(config, Path(args.out))


if __name__ == "__main__":
    main()
