"""The `t2i` command: parse arguments, call the library, say where the results went."""

from __future__ import annotations

import argparse
import logging
import sys


def _data_synth(args):
    from t2i.data.synthetic import synthesize_dataset

    out = synthesize_dataset(args.out, args.n, args.size, args.seed, args.workers)
    print(f"wrote {args.n} captioned faces ({args.size}x{args.size}) to {out}")


def _data_preview(args):
    from t2i.data.preview import preview_grid

    print(f"wrote {preview_grid(args.dir, args.out, n=args.n)}")


def _data_check(args):
    from t2i.data.check import scan_dataset

    report = scan_dataset(args.dir, args.size)
    print(report.summary())
    return 0 if report.records else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2i", description="Text-to-image latent diffusion on captioned faces.")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="make, check and preview datasets").add_subparsers(
        dest="action", required=True
    )
    p = data.add_parser("synth", help="write synthetic captioned faces in the MM-CelebA-HQ layout")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=2000, help="number of images")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (32, 64, 128, 256, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=_data_synth)
    p = data.add_parser("preview", help="grid of images with a caption under each")
    p.add_argument("dir", help="dataset folder or manifest")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--n", type=int, default=32, help="number of images")
    p.set_defaults(func=_data_preview)
    p = data.add_parser("check", help="scan a dataset and count unusable images and captions")
    p.add_argument("dir", help="dataset folder or manifest")
    p.add_argument("--size", type=int, default=64, help="training size; smaller images are reported")
    p.set_defaults(func=_data_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
