"""The labelled corpus (datasets/): loading, preparation and splits."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from triage import HEADS
from triage.config import TriageConfig
from triage.errors import TriageError, UnknownLabelError
from triage.pii import mask_text
from triage.text import normalize

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = REPO_ROOT / "datasets"


@dataclass(frozen=True)
class Example:
    id: str
    text: str  # normalised and masked, as the model sees live traffic
    labels: dict[str, str]
    split: str
    source: str = ""


def case_text(row: dict[str, object]) -> str:
    """A complaint's text, or a conversation's customer turns joined as one case."""
    if "conversation" in row:
        turns = row["conversation"]
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise TriageError(f"{row.get('id')}: conversation must be a list of turns")
        return "\n".join(str(t.get("text", "")) for t in turns if t.get("role") == "customer")
    return str(row.get("text", ""))


def read_jsonl(paths: Iterable[Path]) -> list[dict[str, object]]:
    rows = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise TriageError(f"{path}:{n}: invalid JSON: {exc}") from exc
    return rows


def jsonl_files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]


def load_examples(paths: Sequence[Path], config: TriageConfig) -> list[Example]:
    """Read JSONL files or folders of them; labels are checked against the taxonomy."""
    allowed = {h: set(config.label_ids(h)) for h in HEADS}
    out = []
    for row in read_jsonl(f for p in paths for f in jsonl_files(p)):
        labels = {}
        for head in HEADS:
            value = row.get(head)
            if value not in allowed[head]:
                raise UnknownLabelError(f"{row.get('id')}: unknown {head} label {value!r}")
            labels[head] = str(value)
        text = mask_text(normalize(case_text(row)))
        if text:
            out.append(
                Example(str(row["id"]), text, labels, str(row.get("split", "train")), str(row.get("source", "")))
            )
    return out


def by_split(examples: Sequence[Example], *splits: str) -> list[Example]:
    return [e for e in examples if e.split in splits]
