"""The TF-IDF baseline: training, calibration, bundles and label checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURES
from training.calibration import ece, fit_temperature, review_threshold
from training.data import load_examples
from triage.baseline import softmax
from triage.bundle import load_bundle, read_manifest
from triage.config import TriageConfig
from triage.errors import ConfigError, UnknownLabelError
from triage.pipeline import Triager


def test_bundle_round_trip_gives_identical_probabilities(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copied"
    shutil.copytree(tiny_bundle, copy)  # bundles are self-contained directories
    a, b = load_bundle(tiny_bundle), load_bundle(copy)
    texts = ["信用卡年费乱收", "被骗子转走了钱"]
    for head, p in a.predict(texts).items():
        np.testing.assert_allclose(p, b.predict(texts)[head])
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


def test_manifest_carries_labels_temperatures_thresholds(tiny_bundle: Path, config: TriageConfig) -> None:
    m = read_manifest(tiny_bundle)
    assert m.kind == "tfidf" and m.labels["category"] == list(config.label_ids("category"))
    assert set(m.temperatures) == set(m.thresholds) == {"category", "issue", "urgency", "sentiment"}
    assert all(t > 0 for t in m.temperatures.values())


def test_it_learns_the_training_set(tiny_bundle: Path, config: TriageConfig) -> None:
    examples = [e for e in load_examples([FIXTURES / "tiny.jsonl"], config) if e.split == "train"]
    model = load_bundle(tiny_bundle)
    probs = model.predict([e.text for e in examples])
    labels = model.labels["category"]
    accuracy = np.mean(
        [labels[int(i)] == e.labels["category"] for i, e in zip(probs["category"].argmax(1), examples, strict=True)]
    )
    assert accuracy > 0.9


def test_evidence_names_words_of_the_text(tiny_bundle: Path) -> None:
    model = load_bundle(tiny_bundle)
    text = "信用卡年费说好免的结果又扣了"
    words = model.evidence(text, {"category": "credit_card", "issue": "pricing_fees"})
    assert words and all(w in text and len(w) > 1 for w in words)


def test_service_refuses_a_bundle_whose_labels_disagree(
    tiny_bundle: Path, tmp_path: Path, config: TriageConfig
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    manifest = json.loads((bad / "manifest.json").read_text(encoding="utf-8"))
    manifest["labels"]["category"][-1] = "crypto"
    (bad / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ConfigError, match="crypto"):
        Triager(config, load_bundle(bad))


def test_unknown_labels_in_data_are_refused(tmp_path: Path, config: TriageConfig) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "x", "text": "hi", "category": "crypto", "issue": "other", "urgency": "P4", "sentiment": "neutral"}\n'
    )
    with pytest.raises(UnknownLabelError, match="crypto"):
        load_examples([path], config)


def test_temperature_scaling_fixes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 2000)
    logits = rng.normal(size=(2000, 4))
    logits[np.arange(2000), y] += 1.0
    logits *= 4  # overconfident
    t = fit_temperature(logits, y)
    assert t > 2
    assert ece(softmax(logits, t), y) < ece(softmax(logits), y) / 2


def test_ece_of_a_perfectly_calibrated_model_is_small() -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(3), 20000)
    y = np.array([rng.choice(3, p=row) for row in p])
    assert ece(p, y) < 0.02


def test_review_threshold_reaches_the_target_precision() -> None:
    conf = np.array([0.95, 0.9, 0.85, 0.8, 0.6, 0.55, 0.5, 0.45])
    right = np.array([1, 1, 1, 1, 0, 1, 0, 0], dtype=bool)
    probs = np.stack([conf, 1 - conf], axis=1)
    y = np.where(right, 0, 1)
    # The four most confident are right, the fifth is wrong: precision 1.0 down to 0.8.
    assert review_threshold(probs, y, 0.9) == pytest.approx(0.8)
    assert review_threshold(probs, y, 0.8) == pytest.approx(0.55)  # 5 of 6 right
    # No prefix reaches 0.99 past the top: the most precise prefix keeping a fifth wins.
    wrong_first = np.where(np.arange(8) == 0, 1, y)
    assert review_threshold(probs, wrong_first, 0.99) == pytest.approx(0.8)


def test_served_tfidf_features_equal_scikit_learns(config: TriageConfig) -> None:
    """The plain-numpy transform that serves must compute what the fitted TfidfVectorizer computes."""
    from training.data import DATASETS
    from triage.baseline import TfidfFeatures, _char_vectorizer, _word_vectorizer

    texts = [e.text for e in load_examples([DATASETS / "complaints"], config)][:1500]
    odd = ["", "   ", "ABC  abc\t\n  Xyz", "！！？？", "信用卡" * 300, "单字"]
    features = TfidfFeatures.fit(texts[:1000])
    char, word = _char_vectorizer(), _word_vectorizer()
    char.fit(texts[:1000])
    word.fit(texts[:1000])
    assert features.char.vocabulary == char.vocabulary_
    for ours, theirs in ((features.char, char), (features.word, word)):
        a, b = ours.transform(texts[1000:] + odd), theirs.transform(texts[1000:] + odd)
        assert a.shape == b.shape
        assert (a != 0).nnz == b.nnz
        assert abs(a - b).max() < 1e-6
    assert features.transform(odd).shape == (len(odd), len(char.vocabulary_) + len(word.vocabulary_))
