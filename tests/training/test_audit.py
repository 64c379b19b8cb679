"""The noisy-label audit: out-of-fold predictions find planted label flips."""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from training.audit import (
    REVIEW_JSONL,
    REVIEW_MD,
    AuditError,
    AuditOptions,
    Suspect,
    audit,
    flag,
    plant_flips,
    planted_scores,
    write_review,
)
from training.commands import add_commands
from training.data import DATASETS, Example, by_split, load_examples
from triage import HEADS
from triage.config import TriageConfig
from triage.settings import Settings


def generated(config: TriageConfig, n: int, seed: int = 0) -> list[Example]:
    """Cases whose every label is written in their text: two keywords per head from the taxonomy's descriptions."""
    rng = random.Random(seed)
    words = {h: {label.id: re.split(r"[、，]", label.description) for label in config.labels[h]} for h in HEADS}
    out = []
    for i in range(n):
        labels = {h: rng.choice(config.label_ids(h)) for h in HEADS}
        parts = [w for h in HEADS for w in rng.sample(words[h][labels[h]], min(2, len(words[h][labels[h]])))]
        rng.shuffle(parts)
        out.append(Example(f"g-{i:04d}", "，".join(parts), labels, "train"))
    return out


def test_it_finds_planted_flips_in_generated_cases(config: TriageConfig) -> None:
    noisy, planted = plant_flips(generated(config, 300), config, 0.1, seed=3)
    assert len(planted) == 120  # 10% of 300 cases, four heads
    suspects = audit(noisy, config)
    scores = planted_scores(suspects, planted)
    assert scores["recall"] >= 0.75 and scores["precision"] >= 0.9, scores
    # Found flips suggest the label the case had before it was flipped.
    truth = {e.id: e.labels for e in generated(config, 300)}
    found = [s for s in suspects if (s.id, s.head) in planted]
    assert sum(s.suggested == truth[s.id][s.head] for s in found) >= 0.9 * len(found)
    assert [s.score for s in suspects] == sorted((s.score for s in suspects), reverse=True)


@pytest.mark.slow
def test_it_finds_planted_flips_in_the_real_corpus(config: TriageConfig) -> None:
    examples = sorted(by_split(load_examples([DATASETS / "complaints"], config), "train"), key=lambda e: e.id)
    sample = random.Random(0).sample(examples, 1500)
    heads = ("category", "issue")
    noisy, planted = plant_flips(sample, config, 0.1, heads, seed=5)
    scores = planted_scores(audit(noisy, config, AuditOptions(heads=heads)), planted)
    # A weaker model than on the whole corpus (0.72 recall, 0.56 precision with 5% flips on all four heads).
    assert scores["recall"] >= 0.6 and scores["precision"] >= 0.6, scores


def test_the_rule_needs_confident_disagreement(config: TriageConfig) -> None:
    examples = [
        Example("sure", "t", {"category": "loan", "issue": "other", "urgency": "P3", "sentiment": "neutral"}, "train"),
        Example(
            "hesitant", "t", {"category": "loan", "issue": "other", "urgency": "P3", "sentiment": "neutral"}, "dev"
        ),
        Example("agrees", "t", {"category": "loan", "issue": "other", "urgency": "P3", "sentiment": "neutral"}, "test"),
    ]
    labels = config.label_ids("category")

    def row(**chosen: float) -> list[float]:
        rest = (1 - sum(chosen.values())) / (len(labels) - len(chosen))
        return [chosen.get(label, rest) for label in labels]

    p = np.array(
        [
            row(credit_card=0.9, loan=0.02),  # confidently another label
            row(credit_card=0.55, loan=0.35),  # unsure between two
            row(loan=0.95),
        ]
    )
    suspects = flag(examples, {"category": p}, config, AuditOptions(heads=("category",)))
    assert suspects == [Suspect("sure", "category", "loan", "credit_card", 0.02, 0.9, "t", "train")]


def test_review_list_is_written_most_suspicious_first(config: TriageConfig, tmp_path: Path) -> None:
    suspects = [
        Suspect("a-1", "issue", "other", "funds_security", 0.05, 0.7, "卡被盗刷|还在扣\n第二行", "train"),
        Suspect("a-2", "category", "loan", "credit_card", 0.01, 0.95, "信用卡" * 80, "dev"),
    ]
    ordered = sorted(suspects, key=lambda s: -s.score)
    jsonl, md = write_review(ordered, tmp_path, 10, AuditOptions())
    assert (jsonl.name, md.name) == (REVIEW_JSONL, REVIEW_MD)
    rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["a-2", "a-1"]
    assert rows[1] == {
        "id": "a-1",
        "head": "issue",
        "given": "other",
        "suggested": "funds_security",
        "p_given": 0.05,
        "p_suggested": 0.7,
        "text": "卡被盗刷|还在扣\n第二行",
        "split": "train",
        "score": 0.65,
    }
    text = md.read_text(encoding="utf-8")
    assert "p(suggested) >= 0.5 and p(given) <= 0.1" in text
    table = [line for line in text.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert table[0].startswith("| 1 | a-2 | category | loan | credit_card |") and table[0].endswith("… |")
    assert "卡被盗刷\\|还在扣 / 第二行" in table[1]  # one table row per suspect


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1}, "folds"),
        ({"min_confidence": 0.1, "max_given": 0.2}, "max_given"),
        ({"heads": ("colour",)}, "heads"),
        ({"heads": ()}, "heads"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AuditError, match=message):
        AuditOptions(**kwargs)  # type: ignore[arg-type]


def test_too_few_cases_for_the_folds(config: TriageConfig) -> None:
    with pytest.raises(AuditError, match="folds"):
        audit(generated(config, 3), config)


def test_plant_flips_changes_exactly_the_planted_labels(config: TriageConfig) -> None:
    clean = generated(config, 100)
    noisy, planted = plant_flips(clean, config, 0.05, heads=("urgency",), seed=1)
    changed = {(a.id, h) for a, b in zip(clean, noisy, strict=True) for h in HEADS if a.labels[h] != b.labels[h]}
    assert changed == planted and len(planted) == 5
    assert all(h == "urgency" for _, h in planted)
    with pytest.raises(AuditError, match="rate"):
        plant_flips(clean, config, 1.5)


def test_planted_scores() -> None:
    s = [Suspect(i, "issue", "a", "b", 0.0, 1.0, "", "train") for i in ("x", "y", "z")]
    assert planted_scores(s, {("x", "issue"), ("w", "issue")}) == {
        "planted": 2,
        "flagged": 3,
        "found": 1,
        "recall": 0.5,
        "precision": 1 / 3,
    }


def test_audit_labels_command(config: TriageConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"id": e.id, "text": e.text, "source": "app", "split": "train", **e.labels} for e in generated(config, 150)]
    data = tmp_path / "cases.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    parser = argparse.ArgumentParser(prog="triage")
    add_commands(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "review"
    argv = [
        "audit-labels",
        "--data",
        str(data),
        "--split",
        "train",
        "--folds",
        "3",
        "--plant",
        "0.1",
        "--out",
        str(out),
    ]
    args = parser.parse_args(argv)
    assert args.func(args, Settings.from_env({"TRIAGE_DATA_DIR": str(tmp_path)})) == 0
    printed = capsys.readouterr().out
    scores = json.loads(printed[printed.index("{") :])["planted_flips"]
    assert scores["planted"] == 60 and scores["recall"] >= 0.5
    assert (out / REVIEW_MD).read_text(encoding="utf-8").startswith("# Label review")
    assert len((out / REVIEW_JSONL).read_text(encoding="utf-8").splitlines()) == scores["flagged"]
