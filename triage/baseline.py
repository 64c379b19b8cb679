"""The TF-IDF baseline: jieba words + character 1-3-grams, one linear model per head.

It is the comparison point for the fine-tuned model and the fallback when no
model is built. Stored as plain arrays (no pickle): `tfidf.npz` and `vocab.json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from triage import HEADS
from triage.classifier import Probabilities
from triage.tokens import words


def softmax(logits: NDArray[np.float64], temperature: float = 1.0) -> NDArray[np.float64]:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _char_vectorizer(vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char",
        ngram_range=(1, 3),
        sublinear_tf=True,
        min_df=2,
        max_features=150_000,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


def _word_vectorizer(vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer=words,
        sublinear_tf=True,
        min_df=2,
        max_features=60_000,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


class TfidfFeatures:
    """Character n-gram block followed by the jieba word block."""

    def __init__(self, char: TfidfVectorizer, word: TfidfVectorizer) -> None:
        self.char = char
        self.word = word
        self.word_terms: list[str] = sorted(word.vocabulary_, key=word.vocabulary_.__getitem__)

    @classmethod
    def fit(cls, texts: Sequence[str]) -> TfidfFeatures:
        char, word = _char_vectorizer(), _word_vectorizer()
        char.fit(texts)
        word.fit(texts)
        return cls(char, word)

    @property
    def n_char(self) -> int:
        return len(self.char.vocabulary_)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([self.char.transform(texts), self.word.transform(texts)], format="csr")

    def save(self, directory: Path) -> None:
        vocab = {
            "char": sorted(self.char.vocabulary_, key=self.char.vocabulary_.__getitem__),
            "word": self.word_terms,
        }
        (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, arrays: Mapping[str, NDArray[np.float32]]) -> TfidfFeatures:
        vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        char = _char_vectorizer({t: i for i, t in enumerate(vocab["char"])})
        word = _word_vectorizer({t: i for i, t in enumerate(vocab["word"])})
        char.idf_ = arrays["char_idf"]
        word.idf_ = arrays["word_idf"]
        return cls(char, word)

    def idf_arrays(self) -> dict[str, NDArray[np.float32]]:
        return {"char_idf": self.char.idf_.astype(np.float32), "word_idf": self.word.idf_.astype(np.float32)}


@dataclass
class LinearHead:
    coef: NDArray[np.float32]  # (n_labels, n_features)
    intercept: NDArray[np.float32]  # (n_labels,)

    def __post_init__(self) -> None:
        # A sparse row times a transposed view copies the whole matrix on every
        # call (milliseconds); a contiguous (n_features, n_labels) copy does not.
        self._coef_t = np.ascontiguousarray(self.coef.T)

    def logits(self, x: sparse.csr_matrix) -> NDArray[np.float64]:
        return np.asarray(x @ self._coef_t + self.intercept, dtype=np.float64)


class TfidfClassifier:
    """Implements triage.classifier.Classifier."""

    def __init__(
        self,
        features: TfidfFeatures,
        heads: dict[str, LinearHead],
        labels: dict[str, list[str]],
        temperatures: dict[str, float],
        thresholds: dict[str, float],
        name: str = "tfidf-baseline",
        version: str = "0",
    ) -> None:
        self.features = features
        self.heads = heads
        self.labels = labels
        self.temperatures = temperatures
        self.thresholds = thresholds
        self.name = name
        self.version = version

    def logits(self, texts: Sequence[str]) -> dict[str, NDArray[np.float64]]:
        x = self.features.transform(texts)
        return {head: self.heads[head].logits(x) for head in HEADS}

    def predict(self, texts: Sequence[str]) -> Probabilities:
        return {head: softmax(z, self.temperatures.get(head, 1.0)) for head, z in self.logits(texts).items()}

    def evidence(self, text: str, predicted: Mapping[str, str], k: int = 5) -> list[str]:
        """Words whose TF-IDF weight times the predicted label's coefficient is largest."""
        x = self.features.word.transform([text]).tocoo()
        offset = self.features.n_char
        score: dict[int, float] = {}
        for head in ("category", "issue"):
            if head not in predicted:
                continue
            row = self.heads[head].coef[self.labels[head].index(predicted[head])]
            for j, v in zip(x.col, x.data, strict=True):
                score[int(j)] = score.get(int(j), 0.0) + float(v * row[offset + j])
        # Single characters (我, 刷) explain nothing to a person; words do.
        ranked = sorted((s, j) for j, s in score.items() if s > 0 and len(self.features.word_terms[j]) > 1)
        return [self.features.word_terms[j] for _, j in reversed(ranked[-k:])]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.features.save(directory)
        arrays = self.features.idf_arrays()
        for head, h in self.heads.items():
            arrays[f"coef_{head}"] = h.coef.astype(np.float32)
            arrays[f"intercept_{head}"] = h.intercept.astype(np.float32)
        np.savez_compressed(directory / "tfidf.npz", **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(
        cls,
        directory: Path,
        labels: dict[str, list[str]],
        temperatures: dict[str, float],
        thresholds: dict[str, float],
        name: str,
        version: str,
    ) -> TfidfClassifier:
        with np.load(directory / "tfidf.npz") as data:
            arrays = {key: data[key] for key in data.files}
        heads = {h: LinearHead(arrays[f"coef_{h}"], arrays[f"intercept_{h}"]) for h in HEADS}
        return cls(TfidfFeatures.load(directory, arrays), heads, labels, temperatures, thresholds, name, version)
