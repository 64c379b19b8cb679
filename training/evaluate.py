"""Evaluation of a bundle on labelled JSONL: the report behind `triage evaluate`.

Urgency is scored on the final label (model raised by the rules), as SPEC
section 2 asks; calibration (ECE) on the model's own probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

from training.calibration import ece
from training.data import Example
from triage import HEADS
from triage.pipeline import Triager, TriageRequest

BATCH = 64


def bootstrap_macro_f1(
    y: np.ndarray, pred: np.ndarray, labels: list[int], rounds: int = 1000, seed: int = 0
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = len(y)
    scores = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        scores.append(f1_score(y[idx], pred[idx], labels=labels, average="macro", zero_division=0))
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def evaluate(
    triager: Triager, examples: Sequence[Example], rounds: int = 1000, keep_raw: bool = False
) -> dict[str, Any]:
    if not examples:
        raise ValueError("nothing to evaluate")
    results = []
    probs: dict[str, list[np.ndarray]] = {h: [] for h in HEADS}
    for i in range(0, len(examples), BATCH):
        masked = [triager.prepare(e.text) for e in examples[i : i + BATCH]]
        p = triager.predict_masked(masked)
        for j, m in enumerate(masked):
            results.append(triager.assemble(TriageRequest(m), m, {h: p[h][j] for h in HEADS}))
        for h in HEADS:
            probs[h].append(p[h])
    report: dict[str, Any] = {"n": len(examples), "model": triager.model_info, "heads": {}}
    for head in HEADS:
        labels = list(triager.classifier.labels[head])
        index = {label: j for j, label in enumerate(labels)}
        y = np.array([index[e.labels[head]] for e in examples])
        heads = [getattr(r, head) for r in results]
        pred = np.array([index[h.label] for h in heads])
        review = np.array([h.needs_review for h in heads])
        present = sorted(set(y.tolist()) | set(pred.tolist()))
        p, r, f, s = precision_recall_fscore_support(y, pred, labels=present, zero_division=0)
        low, high = bootstrap_macro_f1(y, pred, present, rounds)
        confusion = np.zeros((len(labels), len(labels)), dtype=int)
        for a, b in zip(y, pred, strict=True):
            confusion[a, b] += 1
        kept = ~review
        report["heads"][head] = {
            "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
            "macro_f1_ci95": [low, high],
            "accuracy": float((y == pred).mean()),
            "ece": ece(np.concatenate(probs[head]), y),
            "abstain_rate": float(review.mean()),
            "accuracy_non_abstained": float((y[kept] == pred[kept]).mean()) if kept.any() else None,
            "per_class": {
                labels[c]: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "support": int(s[k])}
                for k, c in enumerate(present)
            },
            "labels": labels,
            "confusion": confusion.tolist(),
        }
        if keep_raw:
            report.setdefault("_raw", {})[head] = {"y": y.tolist(), "pred": pred.tolist()}
    urgency = report["heads"]["urgency"]["per_class"].get("P1")
    report["p1_recall"] = urgency["recall"] if urgency else None
    return report


def markdown(report: dict[str, Any], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"Model: {report['model']['name']} {report['model']['version']}; {report['n']} cases.",
        "",
    ]
    lines += [
        "| head | macro-F1 | 95% CI | accuracy | ECE | abstain | acc. non-abstained |",
        "|---|---|---|---|---|---|---|",
    ]
    for head, h in report["heads"].items():
        kept = h["accuracy_non_abstained"]
        lines.append(
            f"| {head} | {h['macro_f1']:.3f} | {h['macro_f1_ci95'][0]:.3f}-{h['macro_f1_ci95'][1]:.3f} | "
            f"{h['accuracy']:.3f} | {h['ece']:.3f} | {h['abstain_rate']:.1%} | {'-' if kept is None else f'{kept:.3f}'} |"
        )
    if report.get("p1_recall") is not None:
        lines += ["", f"P1 recall (final urgency): {report['p1_recall']:.3f}"]
    for head, h in report["heads"].items():
        lines += ["", f"## {head}", "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for label, c in h["per_class"].items():
            lines.append(f"| {label} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: Path, title: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (out_dir / "report.md").write_text(markdown(report, title), encoding="utf-8")


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of a report, as bundles keep them in their manifest."""
    heads = {
        h: {
            "macro_f1": v["macro_f1"],
            "macro_f1_ci95": v["macro_f1_ci95"],
            "ece": v["ece"],
            "abstain_rate": v["abstain_rate"],
        }
        for h, v in report["heads"].items()
    }
    return heads | {"p1_recall": report["p1_recall"], "n": report["n"]}
