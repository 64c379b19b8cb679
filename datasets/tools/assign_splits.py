"""Write the reproducible `split` field into every corpus record, in place.

- Test: everything by the test writers (w6 for complaints, c2 for
  conversations), who wrote from their own briefs without seeing the others'
  texts, so test scores measure new phrasing rather than a writer's habits.
- Train/dev: the other writers' records, stratified by category: within each
  category, records ordered by a hash of their id, and every eighth goes to dev.

Usage: python datasets/tools/assign_splits.py [datasets/]
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

TEST_WRITERS = {"w6", "c2"}
DEV_EVERY = 8


def _key(record_id: str) -> str:
    return hashlib.sha256(record_id.encode("utf-8")).hexdigest()


def assign(root: Path) -> dict[str, int]:
    files = sorted(root.glob("complaints/*/*.jsonl")) + sorted(root.glob("conversations/*/*.jsonl"))
    rows = {f: [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()] for f in files}
    strata: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for f, records in rows.items():
        kind = f.parent.parent.name
        for r in records:
            if r.get("writer") in TEST_WRITERS:
                r["split"] = "test"
            else:
                strata[(kind, str(r["category"]))].append(r)
    for members in strata.values():
        for i, r in enumerate(sorted(members, key=lambda r: _key(str(r["id"])))):
            r["split"] = "dev" if i % DEV_EVERY == DEV_EVERY - 1 else "train"
    counts: dict[str, int] = defaultdict(int)
    for f, records in rows.items():
        f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        for r in records:
            counts[f"{f.parent.parent.name}/{r['split']}"] += 1
    return dict(counts)


if __name__ == "__main__":
    print(assign(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])))
