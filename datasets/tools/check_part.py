"""Quick self-check for writers (plain python3, no project install): validates JSONL parts
against the taxonomy data file and reports label counts and near duplicates.

Usage: python datasets/tools/check_part.py FILE_OR_DIR [...]
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"web_form", "app", "hotline", "email", "social", "chatbot", "branch"}


def _labels() -> dict[str, set[str]]:
    with (ROOT / "triage" / "data" / "taxonomy.toml").open("rb") as f:
        taxonomy = tomllib.load(f)
    heads = ("category", "issue", "urgency", "sentiment")
    return {h: {label["id"] for label in taxonomy[h]} for h in heads} | {"source": SOURCES}


LABELS = _labels()


def grams(text: str, n: int = 5) -> set[str]:
    return {text[i : i + n] for i in range(max(1, len(text) - n + 1))}


def main(paths: list[str]) -> int:
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.rglob("*.jsonl")) if p.is_dir() else [p])
    rows, errors = [], 0
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                print(f"{f}:{n}: bad JSON: {exc}")
                errors += 1
                continue
            for head, allowed in LABELS.items():
                if head == "source" and "conversation" in row:
                    continue
                if row.get(head) not in allowed:
                    print(f"{f}:{n}: {head}={row.get(head)!r} not allowed")
                    errors += 1
            text = row.get("text") or " ".join(t.get("text", "") for t in row.get("conversation", []))
            if not text.strip():
                print(f"{f}:{n}: empty text")
                errors += 1
            rows.append((f"{f.name}:{n}", row.get("id"), text))
    ids = Counter(r[1] for r in rows)
    for i, c in ids.items():
        if c > 1:
            print(f"duplicate id {i} x{c}")
            errors += 1
    sets = [grams(t) for _, _, t in rows]
    near = 0
    for i in range(len(rows)):
        for j in range(i):
            a, b = sets[i], sets[j]
            if len(a) and len(b) and len(a & b) / len(a | b) > 0.7:
                print(f"near duplicate: {rows[i][0]} ~ {rows[j][0]}")
                near += 1
                break
    print(f"{len(rows)} rows, {errors} errors, {near} near duplicates")
    counts = {h: Counter() for h in LABELS}
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                for h in LABELS:
                    counts[h][row.get(h)] += 1
    for h, c in counts.items():
        print(h, dict(c.most_common()))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
