"""Training the TF-IDF baseline bundle (triage.baseline)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits

from training.calibration import ece, fit_temperature, review_threshold
from training.data import Example
from triage import HEADS
from triage.baseline import LinearHead, TfidfClassifier, TfidfFeatures, softmax
from triage.bundle import Manifest, write_manifest
from triage.config import TriageConfig


@dataclass(frozen=True)
class BaselineOptions:
    c_grid: tuple[float, ...] = field(
        default=(2.0, 8.0, 32.0), metadata={"help": "inverse regularisation values tried per head on dev"}
    )
    target_precision: float = field(default=0.9, metadata={"help": "precision the review thresholds aim for on dev"})
    max_iter: int = field(default=3000, metadata={"help": "solver iterations"})


def _fit_head(x: object, y: np.ndarray, n_labels: int, c: float, max_iter: int) -> LinearHead:
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=max_iter)
    # lbfgs on sparse features runs 2-3x faster with one BLAS thread than with several here.
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    # Labels absent from training still get a (very unlikely) column.
    coef = np.zeros((n_labels, model.coef_.shape[1]), dtype=np.float32)
    intercept = np.full(n_labels, -30.0, dtype=np.float32)
    if len(model.classes_) == 2:
        # Binary logistic regression keeps one row; expand to two softmax logits.
        coef[model.classes_[1]] = model.coef_[0] / 2
        coef[model.classes_[0]] = -model.coef_[0] / 2
        intercept[model.classes_[1]] = model.intercept_[0] / 2
        intercept[model.classes_[0]] = -model.intercept_[0] / 2
    else:
        coef[model.classes_] = model.coef_
        intercept[model.classes_] = model.intercept_
    return LinearHead(coef, intercept)


def train_baseline(
    train: Sequence[Example],
    dev: Sequence[Example],
    config: TriageConfig,
    options: BaselineOptions | None = None,
    version: str | None = None,
) -> tuple[TfidfClassifier, dict[str, dict[str, float]]]:
    """Fit features and one linear model per head; calibrate and pick thresholds on dev."""
    options = options or BaselineOptions()
    if not train:
        raise ValueError("no training examples")
    labels = {h: list(config.label_ids(h)) for h in HEADS}
    features = TfidfFeatures.fit([e.text for e in train])
    x_train = features.transform([e.text for e in train])
    x_dev = features.transform([e.text for e in dev]) if dev else None
    heads, temperatures, thresholds, report = {}, {}, {}, {}
    for head in HEADS:
        index = {label: i for i, label in enumerate(labels[head])}
        y = np.array([index[e.labels[head]] for e in train])
        y_dev = np.array([index[e.labels[head]] for e in dev], dtype=np.int64)
        best: tuple[float, float, LinearHead] | None = None
        grid = options.c_grid if x_dev is not None else options.c_grid[1:2]
        for c in grid:
            h = _fit_head(x_train, y, len(labels[head]), c, options.max_iter)
            score = f1_score(y_dev, h.logits(x_dev).argmax(1), average="macro") if x_dev is not None else 0.0
            if best is None or score > best[0]:
                best = (score, c, h)
        assert best is not None
        score, c, head_model = best
        heads[head] = head_model
        if x_dev is not None:
            z = head_model.logits(x_dev)
            t = fit_temperature(z, y_dev)
            temperatures[head] = t
            thresholds[head] = review_threshold(softmax(z, t), y_dev, options.target_precision)
            report[head] = {
                "C": c,
                "dev_macro_f1": float(score),
                "temperature": t,
                "dev_ece_before": ece(softmax(z), y_dev),
                "dev_ece_after": ece(softmax(z, t), y_dev),
                "threshold": thresholds[head],
            }
    version = version or datetime.now().strftime("%Y%m%d-%H%M%S")
    model = TfidfClassifier(features, heads, labels, temperatures, thresholds, "tfidf-baseline", version)
    return model, report


def save_bundle(model: TfidfClassifier, directory: Path, metrics: dict[str, object]) -> None:
    model.save(directory)
    write_manifest(
        directory,
        Manifest(
            kind="tfidf",
            name=model.name,
            version=model.version,
            labels=model.labels,
            temperatures=model.temperatures,
            thresholds=model.thresholds,
            metrics=metrics,
        ),
    )
