"""Loss curves as PNGs (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_losses(history: list[dict], path: str | Path, keys: list[str], title: str) -> None:
    """One log-scale panel per key, against history[i]["step"]."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        points = [(h["step"], h[key]) for h in history if key in h]
        if points:
            ax.plot(*zip(*points, strict=True), lw=1)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.set_yscale("log" if points and min(v for _, v in points) > 0 else "linear")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
