"""The model card says which targets a bundle misses, and by how much."""

from __future__ import annotations

from typing import Any

from training.model_card import model_card
from triage.bundle import Manifest


def _report(f1: dict[str, float], ece: dict[str, float], p1_recall: float) -> dict[str, Any]:
    heads = {
        h: {"macro_f1": f1[h], "macro_f1_ci95": [f1[h] - 0.02, f1[h] + 0.02], "ece": ece[h], "abstain_rate": 0.1}
        for h in f1
    }
    return {"heads": heads, "p1_recall": p1_recall, "n": 100}


def _card(report: dict[str, Any]) -> str:
    manifest = Manifest(kind="encoder", name="m", version="1", labels={}, extra={"recipe": "cpu"})
    calibration = {
        h: {"temperature": 1.0, "dev_ece_before": 0.05, "dev_ece_after": 0.03, "threshold": 0.5}
        for h in report["heads"]
    }
    training = {"layers": 6, "frozen_layers": 4, "best_epoch": 3, "options": {}}
    return model_card(manifest, report, calibration, training, 10, 5, 5, 60.0, {"urgency": {"P1": 0.25}})


def test_misses_are_named_with_their_size() -> None:
    card = _card(
        _report(
            {"category": 0.90, "issue": 0.86, "urgency": 0.81, "sentiment": 0.80},
            {"category": 0.02, "issue": 0.02, "urgency": 0.02, "sentiment": 0.07},
            0.93,
        )
    )
    assert "category macro-F1 misses its target by 0.020" in card
    assert "sentiment macro-F1 misses its target by 0.050" in card
    assert "sentiment ECE is 0.020 over 0.05" in card
    assert "P1 recall misses by 0.020" in card
    assert "issue macro-F1 misses" not in card and "urgency macro-F1 misses" not in card
    assert "urgency P1 at p >= 0.25" in card
    assert "the first 6 encoder layers" in card


def test_a_bundle_that_meets_every_target_lists_no_misses() -> None:
    card = _card(
        _report(
            {"category": 0.93, "issue": 0.86, "urgency": 0.81, "sentiment": 0.86},
            {"category": 0.02, "issue": 0.02, "urgency": 0.02, "sentiment": 0.04},
            0.97,
        )
    )
    assert "Targets missed" not in card
