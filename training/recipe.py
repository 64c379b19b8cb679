"""The encoder bundle, end to end: fine-tune, export, calibrate, evaluate, document.

Ensemble weights, temperatures and review thresholds are chosen on the dev
split from the int8 ONNX graph that will serve, not from the torch model, so
what is calibrated is what runs.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from training import plots
from training.baseline import train_baseline
from training.calibration import ece, fit_temperature, review_threshold
from training.data import Example, by_split, load_examples
from training.evaluate import evaluate, markdown, summary
from training.export import export_fp32, quantize_int8
from training.finetune import FinetuneOptions, finetune
from training.model_card import model_card
from training.staging import staged
from triage import HEADS
from triage.baseline import softmax
from triage.bundle import Manifest, load_bundle, write_manifest
from triage.config import TriageConfig
from triage.onnx_model import EncoderClassifier, chars_for, combine, session
from triage.pipeline import Triager
from triage.text import fit_to_budget
from triage.tokenizer import EncoderTokenizer

TOKENIZER_FILES = ("tokenizer.json", "normalization.json", "tokenizer_config.json")
WEIGHT_GRID = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))
# Precision each head's review threshold aims for on dev. Sentiment labels agree
# least between people (data card), so its target is lower, or half would abstain.
TARGET_PRECISION = {"category": 0.9, "issue": 0.9, "urgency": 0.85, "sentiment": 0.8}


def _labels(examples: list[Example], head: str, labels: list[str]) -> np.ndarray:
    return np.array([labels.index(e.labels[head]) for e in examples])


def choose_weight(enc: np.ndarray, tfidf: np.ndarray, y: np.ndarray) -> float:
    """The pooling weight with the best dev macro-F1 (ties: the lower NLL after temperature)."""
    best: tuple[float, float, float] | None = None
    for w in WEIGHT_GRID:
        z = combine(enc, tfidf, w)
        score = float(f1_score(y, z.argmax(1), average="macro"))
        t = fit_temperature(z, y)
        p = softmax(z, t)
        nll = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1))))
        key = (score, -nll, w)
        if best is None or key > best:
            best = key
    assert best is not None
    return best[2]


def build_encoder_bundle(
    data: list[Path],
    out_dir: Path,
    config: TriageConfig,
    options: FinetuneOptions,
    recipe: str = "cpu",
    ensemble: bool = True,
    target_precision: dict[str, float] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    started = time.monotonic()
    targets = TARGET_PRECISION | (target_precision or {})
    examples = load_examples(data, config)
    train, dev, test = by_split(examples, "train"), by_split(examples, "dev"), by_split(examples, "test")
    if not dev:
        raise ValueError("the encoder recipe needs a dev split for early stopping and calibration")
    log(f"recipe {recipe}: {len(train)} train, {len(dev)} dev, {len(test)} test cases")
    labels = {h: list(config.label_ids(h)) for h in HEADS}
    tfidf = train_baseline(train, dev, config)[0] if ensemble else None
    with staged(out_dir) as tmp:
        model, _, train_report = finetune(train, dev, config, options, tmp / "training.log", log)
        export_fp32(model, tmp / "model.fp32.onnx")
        quantize_int8(tmp / "model.fp32.onnx", tmp / "model.int8.onnx")
        assert options.base_model is not None
        (tmp / "tokenizer").mkdir()
        for name in TOKENIZER_FILES:
            if (options.base_model / name).exists():
                shutil.copy2(options.base_model / name, tmp / "tokenizer" / name)
        if tfidf is not None:
            tfidf.save(tmp)
        served = EncoderClassifier(
            session(tmp / "model.int8.onnx"),
            EncoderTokenizer.from_dir(tmp / "tokenizer"),
            labels,
            options.max_length,
            {},
            {},
            "",
            "",
        )
        budget = chars_for(options.max_length)
        dev_texts = [fit_to_budget(e.text, budget) for e in dev]
        enc_dev = served.encoder_logits(dev_texts)
        tfidf_dev = tfidf.logits(dev_texts) if tfidf is not None else None
        weights, temperatures, thresholds, calibration = {}, {}, {}, {}
        (tmp / "reports").mkdir()
        for head in HEADS:
            y = _labels(dev, head, labels[head])
            w = choose_weight(enc_dev[head], tfidf_dev[head], y) if tfidf_dev is not None else 1.0
            z = combine(enc_dev[head], None if tfidf_dev is None else tfidf_dev[head], w)
            t = fit_temperature(z, y)
            weights[head], temperatures[head] = w, t
            thresholds[head] = review_threshold(softmax(z, t), y, targets[head])
            calibration[head] = {
                "weight": w,
                "temperature": t,
                "threshold": thresholds[head],
                "dev_ece_before": ece(softmax(z), y),
                "dev_ece_after": ece(softmax(z, t), y),
                "dev_macro_f1": float(f1_score(y, z.argmax(1), average="macro")),
            }
            plots.reliability(
                tmp / "reports" / f"reliability_{head}.png",
                {"before": (softmax(z), y), "after": (softmax(z, t), y)},
                f"{head} (dev)",
            )
        version = datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"e5-small-zh-{recipe}" + ("-ensemble" if tfidf is not None else "")
        manifest = Manifest(
            kind="ensemble" if tfidf is not None else "encoder",
            name=name,
            version=version,
            labels=labels,
            temperatures=temperatures,
            thresholds=thresholds,
            metrics={"dev": calibration, "training": train_report},
            extra={
                "onnx": {"int8": "model.int8.onnx", "fp32": "model.fp32.onnx"},
                "max_length": options.max_length,
                "ensemble_weights": weights,
                "recipe": recipe,
                "target_precision": targets,
            },
        )
        write_manifest(tmp, manifest)
        report: dict[str, Any] = {}
        if test:
            report = evaluate(Triager(config, load_bundle(tmp)), test, rounds=500)
            for head, h in report["heads"].items():
                plots.confusion(
                    tmp / "reports" / f"confusion_{head}.png", h["confusion"], h["labels"], f"{head} (test)"
                )
            (tmp / "reports" / "test.json").write_text(
                json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
            )
            (tmp / "reports" / "test.md").write_text(markdown(report, f"{name} on the test split"), encoding="utf-8")
        build_seconds = time.monotonic() - started
        manifest.metrics["test"] = summary(report) if report else {}
        manifest.metrics["build_seconds"] = round(build_seconds, 1)
        write_manifest(tmp, manifest)
        (tmp / "MODEL_CARD.md").write_text(
            model_card(
                manifest,
                report,
                calibration,
                train_report,
                len(train),
                len(dev),
                len(test),
                build_seconds,
                config.decision_thresholds,
            ),
            encoding="utf-8",
        )
    log(f"bundle {name} written to {out_dir} in {build_seconds / 60:.1f} min")
    return {"test": manifest.metrics["test"], "build_seconds": build_seconds}
