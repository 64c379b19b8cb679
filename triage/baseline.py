"""The TF-IDF baseline: jieba words + character 1-3-grams, one linear model per head.

It is the comparison point for the fine-tuned model and the fallback when no
model is built. Stored as plain arrays (no pickle): `tfidf.npz` and `vocab.json`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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


def _char_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2, max_features=150_000, dtype=np.float32
    )


def _word_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(analyzer=words, sublinear_tf=True, min_df=2, max_features=60_000, dtype=np.float32)


_SPACES = re.compile(r"\s\s+")


def char_ngrams(text: str) -> list[str]:
    """Character 1-3-grams of the lowercased text with runs of spaces collapsed, as scikit-learn's "char" analyzer."""
    text = _SPACES.sub(" ", text.lower())
    grams = list(text)
    for n in (2, 3):
        grams += [text[i : i + n] for i in range(len(text) - n + 1)]
    return grams


class TfidfBlock:
    """One fitted TF-IDF block: sublinear term frequency times idf, rows scaled to unit length.

    It computes what scikit-learn's fitted TfidfVectorizer.transform computes
    (a parity test holds them together), without the input validation that
    costs scikit-learn about a millisecond per call, which is most of a
    one-complaint request.
    """

    def __init__(self, vocabulary: dict[str, int], idf: NDArray[np.float32], analyzer: Callable[[str], Sequence[str]]):
        self.vocabulary = vocabulary
        self.idf = np.asarray(idf, dtype=np.float64)
        self.analyzer = analyzer
        self.terms: list[str] = sorted(vocabulary, key=vocabulary.__getitem__)

    def __len__(self) -> int:
        return len(self.vocabulary)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        indptr, indices, values = [0], [], []
        lookup = self.vocabulary.get
        for text in texts:
            counts = Counter(j for j in map(lookup, self.analyzer(text)) if j is not None)
            cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
            cols.sort()
            tf = np.array([counts[j] for j in cols.tolist()], dtype=np.float64)
            weights = (np.log(tf) + 1.0) * self.idf[cols]
            norm = np.sqrt(weights @ weights)
            indices.append(cols)
            values.append(weights / norm if norm > 0 else weights)
            indptr.append(indptr[-1] + len(cols))
        return sparse.csr_matrix(
            (
                np.concatenate(values).astype(np.float32) if values else np.zeros(0, np.float32),
                np.concatenate(indices) if indices else np.zeros(0, np.int64),
                np.array(indptr),
            ),
            shape=(len(texts), len(self.vocabulary)),
        )


class TfidfFeatures:
    """Character n-gram block followed by the jieba word block."""

    def __init__(self, char: TfidfBlock, word: TfidfBlock) -> None:
        self.char = char
        self.word = word

    @classmethod
    def fit(cls, texts: Sequence[str]) -> TfidfFeatures:
        char, word = _char_vectorizer(), _word_vectorizer()
        char.fit(texts)
        word.fit(texts)
        return cls(TfidfBlock(char.vocabulary_, char.idf_, char_ngrams), TfidfBlock(word.vocabulary_, word.idf_, words))

    @property
    def n_char(self) -> int:
        return len(self.char)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([self.char.transform(texts), self.word.transform(texts)], format="csr")

    def save(self, directory: Path) -> None:
        vocab = {"char": self.char.terms, "word": self.word.terms}
        (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, arrays: Mapping[str, NDArray[np.float32]]) -> TfidfFeatures:
        vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        char = TfidfBlock({t: i for i, t in enumerate(vocab["char"])}, arrays["char_idf"], char_ngrams)
        word = TfidfBlock({t: i for i, t in enumerate(vocab["word"])}, arrays["word_idf"], words)
        return cls(char, word)

    def idf_arrays(self) -> dict[str, NDArray[np.float32]]:
        return {"char_idf": self.char.idf.astype(np.float32), "word_idf": self.word.idf.astype(np.float32)}


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
        ranked = sorted((s, j) for j, s in score.items() if s > 0 and len(self.features.word.terms[j]) > 1)
        return [self.features.word.terms[j] for _, j in reversed(ranked[-k:])]

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
