"""Quality on the corpus test split: the served bundle against the TF-IDF baseline trained
in the same run on the same train split, per head, with bootstrap 95% intervals.

    .venv/bin/python -m bench.quality [--bundle DIR] [--name NAME]

Also writes the TF-IDF bundle to bench/reports/tfidf-bundle for bench.speed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPORTS, machine, write
from training.baseline import save_bundle, train_baseline
from training.build import corpus_paths
from training.data import by_split, load_examples
from training.evaluate import evaluate
from triage import HEADS
from triage.bundle import load_bundle
from triage.config import TriageConfig, load_config
from triage.pipeline import Triager
from triage.settings import Settings

TARGETS = {"category": 0.92, "issue": 0.85, "urgency": 0.80, "sentiment": 0.85}


def paired_difference(
    a: dict[str, Any], b: dict[str, Any], rounds: int = 1000, seed: int = 0
) -> dict[str, list[float]]:
    """Bootstrap 95% interval of macro-F1(served) - macro-F1(baseline) per head, resampling cases jointly."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    out = {}
    for head in HEADS:
        y, pa, pb = (
            np.array(a["_raw"][head]["y"]),
            np.array(a["_raw"][head]["pred"]),
            np.array(b["_raw"][head]["pred"]),
        )
        labels = sorted(set(y.tolist()))
        diffs = []
        for _ in range(rounds):
            i = rng.integers(0, len(y), len(y))
            diffs.append(
                f1_score(y[i], pa[i], labels=labels, average="macro", zero_division=0)
                - f1_score(y[i], pb[i], labels=labels, average="macro", zero_division=0)
            )
        out[head] = [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]
    return out


def int8_parity(bundle: Path, config: TriageConfig, texts: list[str]) -> dict[str, dict[str, float]]:
    """How far the int8 graph moves the bundle's probabilities from fp32, on the given texts as served."""
    import os

    from triage.bundle import read_manifest

    if "fp32" not in read_manifest(bundle).extra.get("onnx", {}):
        return {}
    probs = {}
    for precision in ("int8", "fp32"):
        os.environ["TRIAGE_ONNX_PRECISION"] = precision
        probs[precision] = Triager(config, load_bundle(bundle)).predict_masked(texts)
    os.environ.pop("TRIAGE_ONNX_PRECISION", None)
    out = {}
    for head in HEADS:
        a, b = probs["int8"][head], probs["fp32"][head]
        out[head] = {
            "label_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
            "max_abs_diff": float(np.abs(a - b).max()),
            "mean_abs_diff": float(np.abs(a - b).mean()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", default="quality", help="report name under bench/reports/ (default: quality)")
    parser.add_argument("--bundle", type=Path, default=Settings.from_env().default_bundle_dir)
    args = parser.parse_args()
    config = load_config()
    examples = load_examples(corpus_paths(), config)
    train, dev, test = by_split(examples, "train"), by_split(examples, "dev"), by_split(examples, "test")
    tfidf, _ = train_baseline(train, dev, config)
    save_bundle(tfidf, REPORTS / "tfidf-bundle", {})
    served = Triager(config, load_bundle(args.bundle))
    reports = {
        "served": evaluate(served, test, keep_raw=True),
        "tfidf": evaluate(Triager(config, tfidf), test, keep_raw=True),
    }
    diff = paired_difference(reports["served"], reports["tfidf"])
    parity = int8_parity(args.bundle, config, [e.text for e in test])
    for r in reports.values():
        r.pop("_raw")
    data = {
        "machine": machine(),
        "n_test": len(test),
        "reports": reports,
        "difference_ci95": diff,
        "int8_vs_fp32": parity,
    }
    md = [
        f"# Quality on the test split ({len(test)} cases, writers unseen in training)",
        "",
        f"Served: {served.model_info['name']} {served.model_info['version']}; baseline: TF-IDF trained in the same run.",
        "",
        "| head | served macro-F1 (95% CI) | TF-IDF macro-F1 (95% CI) | difference (95% CI) | target | served ECE |",
        "|---|---|---|---|---|---|",
    ]
    for head in HEADS:
        s, t = reports["served"]["heads"][head], reports["tfidf"]["heads"][head]
        md.append(
            f"| {head} | {s['macro_f1']:.3f} ({s['macro_f1_ci95'][0]:.3f}-{s['macro_f1_ci95'][1]:.3f}) | "
            f"{t['macro_f1']:.3f} ({t['macro_f1_ci95'][0]:.3f}-{t['macro_f1_ci95'][1]:.3f}) | "
            f"{s['macro_f1'] - t['macro_f1']:+.3f} ({diff[head][0]:+.3f} to {diff[head][1]:+.3f}) | "
            f"{TARGETS[head]:.2f} | {s['ece']:.3f} |"
        )
    md += [
        "",
        f"P1 recall (final urgency): served {reports['served']['p1_recall']:.3f}, TF-IDF {reports['tfidf']['p1_recall']:.3f}.",
        "Abstain rate (any head flagged for review is counted per head): "
        + ", ".join(f"{h} {reports['served']['heads'][h]['abstain_rate']:.0%}" for h in HEADS)
        + ".",
    ]
    if parity:
        md += [
            "",
            "int8 against fp32 ONNX on the test split (model probabilities): label agreement "
            + ", ".join(f"{h} {v['label_agreement']:.1%}" for h, v in parity.items())
            + "; largest probability difference "
            + ", ".join(f"{h} {v['max_abs_diff']:.3f}" for h, v in parity.items())
            + "; mean "
            + ", ".join(f"{h} {v['mean_abs_diff']:.4f}" for h, v in parity.items())
            + ".",
        ]
    print(write(args.name, data, "\n".join(md) + "\n").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
