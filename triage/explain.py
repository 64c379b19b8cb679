"""Occlusion evidence: the finer, slower method, on request.

Each distinct word is removed in turn and the text scored again in one batch;
a word's weight is how much the predicted labels' probability falls without
it. It works for any classifier, at the cost of one extra batch per text.
"""

from __future__ import annotations

from collections.abc import Mapping

from triage.classifier import Classifier
from triage.tokens import words

MAX_WORDS = 40


def occlusion(classifier: Classifier, text: str, predicted: Mapping[str, str], k: int = 5) -> list[str]:
    candidates = list(dict.fromkeys(w for w in words(text) if len(w) > 1))[:MAX_WORDS]
    if not candidates:
        return []
    variants = [text] + [text.replace(w, "") for w in candidates]
    probs = classifier.predict(variants)
    drop = [0.0] * len(candidates)
    for head, label in predicted.items():
        column = list(classifier.labels[head]).index(label)
        p = probs[head][:, column]
        for i in range(len(candidates)):
            drop[i] += float(p[0] - p[i + 1])
    ranked = sorted(range(len(candidates)), key=lambda i: -drop[i])
    return [candidates[i] for i in ranked[:k] if drop[i] > 0]
