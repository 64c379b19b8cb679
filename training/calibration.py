"""Temperature scaling, expected calibration error and review thresholds."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from triage.baseline import softmax


def nll(logits: NDArray[np.float64], y: NDArray[np.int64], temperature: float) -> float:
    p = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))


def fit_temperature(logits: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    """The temperature minimising dev negative log-likelihood (golden-section search on log T)."""
    if len(y) == 0:
        return 1.0
    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(logits, y, float(np.exp(a))), nll(logits, y, float(np.exp(b)))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(logits, y, float(np.exp(a)))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(logits, y, float(np.exp(b)))
    return float(np.exp((lo + hi) / 2))


def ece(probs: NDArray[np.float64], y: NDArray[np.int64], bins: int = 15) -> float:
    """Expected calibration error of the top label, equal-width confidence bins."""
    if len(y) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            total += in_bin.mean() * abs(conf[in_bin].mean() - correct[in_bin].mean())
    return float(total)


def review_threshold(probs: NDArray[np.float64], y: NDArray[np.int64], target_precision: float) -> float:
    """The lowest confidence threshold whose kept predictions reach `target_precision`.

    Cases below the threshold go to human review. If no threshold reaches the
    target, the one with the best precision that still keeps 20% is returned.
    """
    if len(y) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    order = np.argsort(-conf)
    precision = np.cumsum(correct[order]) / np.arange(1, len(y) + 1)
    ok = np.nonzero(precision >= target_precision)[0]
    if len(ok):
        return float(conf[order][ok.max()])
    keep = max(1, len(y) // 5)
    best = int(np.argmax(precision[keep - 1 :])) + keep - 1
    return float(conf[order][best])
