"""The second, independent labelling pass: draw the sample, then measure agreement.

    python datasets/tools/agreement.py sample   # writes datasets/agreement/sample.jsonl (texts only)
    python datasets/tools/agreement.py report   # compares datasets/agreement/second_pass.jsonl

The sample is a seeded random 10% of all records; the second labeller sees the
text (or conversation) and the label guide, never the first labels.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADS = ("category", "issue", "urgency", "sentiment")
OUT = ROOT / "agreement"


def records() -> list[dict[str, object]]:
    files = sorted(ROOT.glob("complaints/*/*.jsonl")) + sorted(ROOT.glob("conversations/*/*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


def sample(fraction: float = 0.1, seed: int = 2026) -> int:
    rows = records()
    chosen = random.Random(seed).sample(rows, round(len(rows) * fraction))
    OUT.mkdir(exist_ok=True)
    with (OUT / "sample.jsonl").open("w", encoding="utf-8") as f:
        for r in chosen:
            item = {"id": r["id"]} | (
                {"conversation": r["conversation"]} if "conversation" in r else {"text": r["text"]}
            )
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    return len(chosen)


def kappa(a: list[str], b: list[str]) -> float:
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return (observed - expected) / (1 - expected) if expected < 1 else 1.0


def report() -> dict[str, object]:
    first = {str(r["id"]): r for r in records()}
    second = [
        json.loads(line)
        for line in (OUT / "second_pass.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    out: dict[str, object] = {"n": len(second)}
    disagreements: dict[str, Counter[tuple[str, str]]] = {}
    for head in HEADS:
        a = [str(first[str(s["id"])][head]) for s in second]
        b = [str(s[head]) for s in second]
        out[head] = {
            "agreement": round(sum(x == y for x, y in zip(a, b, strict=True)) / len(a), 3),
            "kappa": round(kappa(a, b), 3),
        }
        disagreements[head] = Counter((x, y) for x, y in zip(a, b, strict=True) if x != y)
    out["top_disagreements"] = {h: [[x, y, n] for (x, y), n in c.most_common(5)] for h, c in disagreements.items()}
    (OUT / "report.json").write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "report"
    print(sample() if command == "sample" else json.dumps(report(), ensure_ascii=False, indent=2))
