"""Reliability diagrams and confusion matrices as PNG (matplotlib, training only)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def reliability(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, bins: int = 10) -> Path:
    """One line per curve (e.g. before/after calibration): accuracy against confidence per bin."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    edges = np.linspace(0, 1, bins + 1)
    for name, (probs, y) in curves.items():
        conf, right = probs.max(1), probs.argmax(1) == y
        xs, ys = [], []
        for lo, hi in pairwise(edges):
            sel = (conf > lo) & (conf <= hi)
            if sel.sum() >= 3:
                xs.append(conf[sel].mean())
                ys.append(right[sel].mean())
        ax.plot(xs, ys, "o-", label=name)
    ax.set(xlabel="confidence", ylabel="accuracy", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def confusion(path: Path, matrix: list[list[int]], labels: list[str], title: str) -> Path:
    plt = _plt()
    m = np.array(matrix)
    size = 2.2 + 0.45 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size), dpi=110)
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(
                    j,
                    i,
                    str(m[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if m[i, j] > m.max() / 2 else "black",
                )
    ax.set(xlabel="predicted", ylabel="labelled", title=title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
