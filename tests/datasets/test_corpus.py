"""The labelled corpus: schema, labels, sizes, per-label minimums, splits and duplicates."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from training.data import DATASETS, case_text, read_jsonl
from training.dedup import duplicate_rate
from triage import HEADS
from triage.config import TriageConfig

TEST_WRITERS = {"w6", "c2"}


@pytest.fixture(scope="module")
def complaints() -> list[dict[str, object]]:
    return read_jsonl(sorted((DATASETS / "complaints").glob("*/*.jsonl")))


@pytest.fixture(scope="module")
def conversations() -> list[dict[str, object]]:
    return read_jsonl(sorted((DATASETS / "conversations").glob("*/*.jsonl")))


def test_every_record_matches_the_schema(
    complaints: list[dict[str, object]], conversations: list[dict[str, object]]
) -> None:
    schema = json.loads((DATASETS / "schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    bad = [(r.get("id"), e.message) for r in complaints + conversations for e in validator.iter_errors(r)]
    assert bad == []


def test_schema_labels_match_the_taxonomy(config: TriageConfig) -> None:
    schema = json.loads((DATASETS / "schema.json").read_text(encoding="utf-8"))
    props = schema["$defs"]["labels"]["properties"]
    for head in HEADS:
        assert props[head]["enum"] == list(config.label_ids(head))


def test_ids_are_unique(complaints: list[dict[str, object]], conversations: list[dict[str, object]]) -> None:
    ids = Counter(r["id"] for r in complaints + conversations)
    assert [i for i, n in ids.items() if n > 1] == []


def test_sizes(complaints: list[dict[str, object]], conversations: list[dict[str, object]]) -> None:
    assert len(complaints) >= 5000
    assert len(conversations) >= 400


@pytest.mark.parametrize("head", HEADS)
def test_every_label_has_120_examples(head: str, complaints: list[dict[str, object]], config: TriageConfig) -> None:
    counts = Counter(r[head] for r in complaints)
    assert {label: counts[label] for label in config.label_ids(head) if counts[label] < 120} == {}


def test_test_split_comes_from_its_own_writers(
    complaints: list[dict[str, object]], conversations: list[dict[str, object]]
) -> None:
    rows = complaints + conversations
    test_writers = {r["writer"] for r in rows if r["split"] == "test"}
    train_writers = {r["writer"] for r in rows if r["split"] in ("train", "dev")}
    assert test_writers == TEST_WRITERS and not test_writers & train_writers
    splits = Counter(r["split"] for r in complaints)
    assert splits["test"] >= 500 and splits["dev"] >= 400


def test_dev_is_stratified_by_category(complaints: list[dict[str, object]]) -> None:
    train = Counter(r["category"] for r in complaints if r["split"] == "train")
    dev = Counter(r["category"] for r in complaints if r["split"] == "dev")
    for category, n in train.items():
        assert abs(dev[category] / (n + dev[category]) - 1 / 8) < 0.03


def test_near_duplicates_under_two_percent(
    complaints: list[dict[str, object]], conversations: list[dict[str, object]]
) -> None:
    texts = [case_text(r) for r in complaints + conversations]
    rate, pairs = duplicate_rate(texts)
    assert rate <= 0.02, f"{len(pairs)} near-duplicate pairs"


def test_conversations_end_in_a_handoff_shape(conversations: list[dict[str, object]]) -> None:
    for r in conversations:
        turns = r["conversation"]
        assert isinstance(turns, list)
        assert any(t["role"] == "customer" for t in turns) and any(t["role"] == "bot" for t in turns)


def test_data_card_exists() -> None:
    card = Path(DATASETS / "README.md").read_text(encoding="utf-8")
    for section in ("How it was written", "Counts", "Agreement", "Duplicates", "Baseline", "Known limitations"):
        assert section in card
