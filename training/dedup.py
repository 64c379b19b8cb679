"""Exact and near duplicates: character 5-gram Jaccard, found with MinHash LSH, verified exactly."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

GRAM = 5
BANDS, ROWS = 20, 5  # candidate probability 0.975 at Jaccard 0.7
_PRIME = (1 << 31) - 1


def grams(text: str, n: int = GRAM) -> set[str]:
    text = "".join(text.split())
    return {text[i : i + n] for i in range(max(1, len(text) - n + 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicate_pairs(texts: Sequence[str], threshold: float = 0.7, seed: int = 0) -> list[tuple[int, int, float]]:
    """Pairs (i, j, jaccard) with i < j whose 5-gram Jaccard is above `threshold`."""
    sets = [grams(t) for t in texts]
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _PRIME, BANDS * ROWS, dtype=np.int64)
    b = rng.integers(0, _PRIME, BANDS * ROWS, dtype=np.int64)
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        h = np.fromiter((zlib.crc32(g.encode("utf-8")) for g in s), dtype=np.int64, count=len(s))
        sig = ((np.outer(h, a) + b) % _PRIME).min(axis=0)
        for band in range(BANDS):
            buckets[(band, sig[band * ROWS : (band + 1) * ROWS].tobytes())].append(i)
    candidates = {
        (x, y)
        for members in buckets.values()
        if len(members) > 1
        for k, x in enumerate(members)
        for y in members[k + 1 :]
    }
    pairs = []
    for i, j in sorted(candidates):
        score = jaccard(sets[i], sets[j])
        if score > threshold:
            pairs.append((i, j, score))
    return pairs


def duplicate_rate(texts: Sequence[str], threshold: float = 0.7) -> tuple[float, list[tuple[int, int, float]]]:
    """Share of texts that near-duplicate an earlier one, and the pairs."""
    pairs = near_duplicate_pairs(texts, threshold)
    later = {j for _, j, _ in pairs}
    return (len(later) / len(texts) if texts else 0.0), pairs
