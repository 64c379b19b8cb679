"""The fine-tuned encoder served by onnxruntime, alone or combined with the TF-IDF model.

Bundle kinds:
- `encoder`: probabilities = softmax(encoder logits / T).
- `ensemble`: log-linear pooling, per head,
  z = w * log_softmax(encoder) + (1 - w) * log_softmax(tfidf), probabilities = softmax(z / T).
  The weight w and the temperature T were chosen on the dev split. Evidence
  words come from the TF-IDF part (cheap, and readable).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from triage import HEADS
from triage.baseline import TfidfClassifier, softmax
from triage.classifier import Probabilities
from triage.tokenizer import EncoderTokenizer

BATCH = 32


def chars_for(max_length: int) -> int:
    """Characters a token budget holds, for the long-text policy: a little over one token per character.

    Training truncates with it and serving declares it as `max_chars`, so both cut texts alike.
    """
    return int(max_length * 1.5)


def log_softmax(z: NDArray[np.float64]) -> NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    return np.asarray(z - np.log(np.exp(z).sum(axis=1, keepdims=True)), dtype=np.float64)


def combine(encoder: NDArray[np.float64], tfidf: NDArray[np.float64] | None, weight: float) -> NDArray[np.float64]:
    if tfidf is None:
        return encoder
    return weight * log_softmax(encoder) + (1.0 - weight) * log_softmax(tfidf)


def session(path: Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else int(os.environ.get("TRIAGE_ORT_THREADS", "0"))
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class EncoderClassifier:
    """Implements triage.classifier.Classifier over an ONNX graph with four logit outputs."""

    def __init__(
        self,
        session: Any,
        tokenizer: EncoderTokenizer,
        labels: dict[str, list[str]],
        max_length: int,
        temperatures: dict[str, float],
        thresholds: dict[str, float],
        name: str,
        version: str,
        tfidf: TfidfClassifier | None = None,
        weights: dict[str, float] | None = None,
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.labels = labels
        self.max_length = max_length
        self.max_chars = chars_for(max_length)
        self.temperatures = temperatures
        self.thresholds = thresholds
        self.name = name
        self.version = version
        self.tfidf = tfidf
        self.weights = weights or {}

    def encoder_logits(self, texts: Sequence[str]) -> dict[str, NDArray[np.float64]]:
        """Raw encoder logits; texts are run in length-sorted batches and put back in order."""
        out = {h: np.zeros((len(texts), len(self.labels[h]))) for h in HEADS}
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            index = order[start : start + BATCH]
            ids, mask = self.tokenizer.encode_batch([texts[i] for i in index], self.max_length)
            results = self.session.run(list(HEADS), {"input_ids": ids, "attention_mask": mask})
            for h, z in zip(HEADS, results, strict=True):
                out[h][index] = z
        return out

    def combined_logits(self, texts: Sequence[str]) -> dict[str, NDArray[np.float64]]:
        encoder = self.encoder_logits(texts)
        tfidf = self.tfidf.logits(texts) if self.tfidf is not None else None
        return {h: combine(encoder[h], None if tfidf is None else tfidf[h], self.weights.get(h, 1.0)) for h in HEADS}

    def predict(self, texts: Sequence[str]) -> Probabilities:
        return {h: softmax(z, self.temperatures.get(h, 1.0)) for h, z in self.combined_logits(texts).items()}

    def evidence(self, text: str, predicted: Mapping[str, str], k: int = 5) -> list[str]:
        return self.tfidf.evidence(text, predicted, k) if self.tfidf is not None else []
