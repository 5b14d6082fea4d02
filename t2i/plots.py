"""Loss curves as PNGs (matplotlib, no display needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANEL_INCHES = 4
TITLE_CHARS_PER_INCH = 10  # at the title's font size


def plot_losses(history: list[dict], path: str | Path, keys: list[str], title: str) -> None:
    """One log-scale panel per key, against history[i]["step"]; the title wrapped to the figure's width."""
    fig, axes = plt.subplots(1, len(keys), figsize=(PANEL_INCHES * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        points = [(h["step"], h[key]) for h in history if key in h]
        if points:
            ax.plot(*zip(*points, strict=True), lw=1)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.set_yscale("log" if points and min(v for _, v in points) > 0 else "linear")
        ax.grid(alpha=0.3)
    fig.suptitle(textwrap.fill(title, TITLE_CHARS_PER_INCH * PANEL_INCHES * len(keys)))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
