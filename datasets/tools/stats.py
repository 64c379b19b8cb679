"""Figures for the data card: counts per label and split, sources, lengths, near duplicates,
and how often the labelled urgency sits below what the deterministic rules demand.

Usage: .venv/bin/python datasets/tools/stats.py  (writes datasets/stats.json, prints Markdown)
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np

from training.data import case_text, read_jsonl
from training.dedup import duplicate_rate
from triage import HEADS
from triage.config import load_config
from triage.pii import mask_text
from triage.signals import detect, raise_urgency, urgency_floor
from triage.text import normalize

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 6, 1)  # dates in the corpus are 2025-2026; deadlines are judged from mid-2026


def main() -> dict[str, object]:
    config = load_config()
    complaints = read_jsonl(sorted(ROOT.glob("complaints/*/*.jsonl")))
    conversations = read_jsonl(sorted(ROOT.glob("conversations/*/*.jsonl")))
    stats: dict[str, object] = {"complaints": len(complaints), "conversations": len(conversations)}
    for name, rows in (("complaints", complaints), ("conversations", conversations)):
        stats[f"{name}_by_split"] = dict(Counter(str(r["split"]) for r in rows))
        stats[f"{name}_labels"] = {
            h: {k: Counter(str(r[h]) for r in rows)[k] for k in config.label_ids(h)} for h in HEADS
        }
    stats["sources"] = dict(Counter(str(r["source"]) for r in complaints).most_common())
    stats["writers"] = dict(sorted(Counter(str(r["writer"]) for r in complaints + conversations).items()))
    lengths = np.array([len(str(r["text"])) for r in complaints])
    stats["length_chars"] = {
        "median": int(np.median(lengths)),
        "p90": int(np.percentile(lengths, 90)),
        "max": int(lengths.max()),
        "over_300": int((lengths > 300).sum()),
    }
    turns = [len(r["conversation"]) for r in conversations]  # type: ignore[arg-type]
    stats["conversation_turns"] = {"min": min(turns), "median": int(np.median(turns)), "max": max(turns)}
    rate, pairs = duplicate_rate([case_text(r) for r in complaints + conversations])
    stats["near_duplicates"] = {"rate": round(rate, 4), "pairs": len(pairs)}
    below = 0
    for r in complaints + conversations:
        text = mask_text(normalize(case_text(r)))
        floors = urgency_floor(detect(text, config, TODAY), {"issue": str(r["issue"])}, config, TODAY)
        final, _ = raise_urgency(str(r["urgency"]), floors)
        below += final != r["urgency"]
    stats["labels_below_rule_floor"] = {
        "count": below,
        "share": round(below / (len(complaints) + len(conversations)), 4),
    }
    (ROOT / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")
    return stats


def markdown(stats: dict[str, object]) -> str:
    lines = []
    for name in ("complaints", "conversations"):
        labels = stats[f"{name}_labels"]
        assert isinstance(labels, dict)
        lines += [f"### {name} ({stats[name]}; splits {stats[f'{name}_by_split']})", ""]
        for head, counts in labels.items():
            lines.append(f"- **{head}**: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    s = main()
    print(markdown(s))
    print(json.dumps({k: v for k, v in s.items() if not k.endswith("_labels")}, ensure_ascii=False, indent=2))
