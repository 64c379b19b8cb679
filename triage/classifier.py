"""The classifier protocol: anything that turns texts into per-head probabilities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

Probabilities = dict[str, NDArray[np.float64]]


@runtime_checkable
class Classifier(Protocol):
    """A model over masked, normalised texts.

    `labels[head]` orders the columns of `predict(texts)[head]`, an array of
    shape (len(texts), len(labels[head])) whose rows sum to one.
    """

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def thresholds(self) -> Mapping[str, float]:
        """Review thresholds chosen on the dev split (may be empty)."""
        ...

    def predict(self, texts: Sequence[str]) -> Probabilities: ...

    def evidence(self, text: str, predicted: Mapping[str, str], k: int = 5) -> list[str]:
        """The words in `text` that drove the predicted labels, strongest first."""
        ...
