"""`triage classify`, single and JSONL batch (SPEC section 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run(args: list[str], bundle: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"TRIAGE_MODEL_DIR": str(bundle)}
    return subprocess.run(
        [sys.executable, "-m", "triage", *args], env=env, capture_output=True, text=True, timeout=120, check=False, **kw
    )  # type: ignore[call-overload]


def test_classify_prints_the_result_object(tiny_bundle: Path) -> None:
    r = run(["classify", "信用卡被盗刷了两万元，还在扣", "--json", "--channel", "email"], tiny_bundle)
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["ticket_id"] is None and body["ack"]["channel"] == "email"
    assert body["urgency"]["label"] == "P1"


def test_classify_batch_keeps_ids_and_order(tiny_bundle: Path, tmp_path: Path) -> None:
    items = [
        {"id": f"c{i}", "text": t}
        for i, t in enumerate(["网点排队太久", "年费乱扣", "征信有逾期记录", "贷款催收骚扰家人"])
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items), encoding="utf-8")
    r = run(["classify", "--input", str(src), "--output", str(out)], tiny_bundle)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == ["c0", "c1", "c2", "c3"]
    assert all("category" in row for row in rows)
    assert "classify" in r.stderr  # the progress bar


def test_classify_batch_reports_bad_lines_and_goes_on(tiny_bundle: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(
        '{"id": "a", "text": "年费"}\n{broken\n{"id": "c", "text": ""}\n{"id": "d", "text": "挂失"}\n[1]\n',
        encoding="utf-8",
    )
    r = run(["classify", "--input", str(src), "--output", str(out)], tiny_bundle)
    assert r.returncode == 1
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    codes = [row.get("error", {}).get("code") for row in rows]
    assert codes == [None, "invalid_json", "empty_text", None, "validation_error"]
    assert [row["id"] for row in rows] == ["a", None, "c", "d", None]  # a broken line has no id


def test_missing_bundle_says_what_to_do(tmp_path: Path) -> None:
    r = run(["classify", "年费"], tmp_path / "nothing")
    assert r.returncode == 2 and "triage build-default" in r.stderr
