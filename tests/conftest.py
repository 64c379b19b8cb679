"""Shared fixtures: the data files, a fake classifier and a tiny trained bundle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from triage import HEADS
from triage.baseline import TfidfClassifier
from triage.bundle import load_bundle
from triage.classifier import Probabilities
from triage.config import TriageConfig, load_config
from triage.pipeline import Triager

FIXTURES = Path(__file__).parent / "fixtures"


class FakeClassifier:
    """Returns chosen labels with chosen confidence: for tests where the model is beside the point."""

    name = "fake"
    version = "test"

    def __init__(self, config: TriageConfig, confidence: float = 0.9, **chosen: str) -> None:
        self.labels = {h: list(config.label_ids(h)) for h in HEADS}
        self.thresholds: dict[str, float] = {h: 0.5 for h in HEADS}
        self.confidence = confidence
        self.chosen = {"category": "credit_card", "issue": "operations", "urgency": "P3", "sentiment": "negative"}
        self.chosen.update(chosen)

    def predict(self, texts: Sequence[str]) -> Probabilities:
        out = {}
        for head in HEADS:
            labels = self.labels[head]
            row = np.full(len(labels), (1 - self.confidence) / (len(labels) - 1))
            row[labels.index(self.chosen[head])] = self.confidence
            out[head] = np.tile(row, (len(texts), 1))
        return out

    def evidence(self, text: str, predicted: Mapping[str, str], k: int = 5) -> list[str]:
        return []


@pytest.fixture(scope="session")
def config() -> TriageConfig:
    return load_config()


@pytest.fixture
def fake_triager(config: TriageConfig):  # type: ignore[no-untyped-def]
    def make(confidence: float = 0.9, **chosen: str) -> Triager:
        return Triager(config, FakeClassifier(config, confidence, **chosen))

    return make


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, config: TriageConfig) -> Path:
    """A TF-IDF bundle trained in seconds on the hand-written fixture set."""
    from training.baseline import BaselineOptions, save_bundle, train_baseline
    from training.data import by_split, load_examples

    examples = load_examples([FIXTURES / "tiny.jsonl"], config)
    model, report = train_baseline(
        by_split(examples, "train"),
        by_split(examples, "dev"),
        config,
        BaselineOptions(c_grid=(4.0,), target_precision=0.5),
    )
    out = tmp_path_factory.mktemp("bundle") / "tiny"
    save_bundle(model, out, {"dev": report})
    return out


@pytest.fixture(scope="session")
def tiny_triager(config: TriageConfig, tiny_bundle: Path) -> Triager:
    model = load_bundle(tiny_bundle)
    assert isinstance(model, TfidfClassifier)
    return Triager(config, model)
