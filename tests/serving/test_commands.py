"""`triage keys`, `triage migrate` and `triage export-cases` against a real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from serving.store import open_store
from serving.store.keys import key_hash, stored_keys
from serving.store.tickets import NewTicket, TicketStore
from triage.cli import main
from triage.pipeline import Triager
from triage.settings import Settings

SCHEMA = json.loads((Path(__file__).parents[2] / "datasets" / "schema.json").read_text(encoding="utf-8"))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_triager: Triager) -> TicketStore:
    monkeypatch.setenv("TRIAGE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return open_store(Settings.from_env(), tiny_triager.config.deployment.timezone)


def test_keys_create_prints_a_key_and_stores_its_hash(store: TicketStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--role", "agent", "--label", "张三"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("tk_") and stored_keys(store.engine) == {key_hash(key): "agent"}
    assert main(["keys", "revoke", key_hash(key)[:12]]) == 0
    assert stored_keys(store.engine) == {}
    with pytest.raises(SystemExit):
        main(["keys", "create", "--role", "root"])


def test_migrate_reports_the_revision(store: TicketStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert "revision 0001" in capsys.readouterr().out


def test_export_cases_writes_corrected_and_confirmed_cases_in_the_corpus_schema(
    store: TicketStore, tiny_triager: Triager, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = ["信用卡年费乱收，之前说好免年费的", "手机银行一直闪退登录不了", "理财产品亏损，销售时说保本"]
    tickets = []
    for text in texts:
        result = tiny_triager.triage(text).to_dict()
        tickets.append(store.create(NewTicket(result, "sms", datetime.now(UTC), source="app"), "intake")[0])
    corrected, confirmed, untouched = tickets
    store.add_feedback(corrected["ticket_id"], {"urgency": "P1", "category": "loan"}, "核实后更正", "agent-1")
    store.add_feedback(confirmed["ticket_id"], {}, None, "agent-2")
    out = tmp_path / "cases.jsonl"
    assert main(["export-cases", "--output", str(out)]) == 0
    assert "exported 2 cases (1 corrected, 1 confirmed)" in capsys.readouterr().out
    records = {r["ticket_id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(records) == {corrected["ticket_id"], confirmed["ticket_id"]}
    for record in records.values():
        jsonschema.validate(record, SCHEMA)
    fixed = records[corrected["ticket_id"]]
    assert (fixed["category"], fixed["urgency"], fixed["feedback"]) == ("loan", "P1", "corrected")
    assert fixed["issue"] == corrected["issue"]["label"] and fixed["writer"] == "agent:agent-1"
    assert records[confirmed["ticket_id"]]["feedback"] == "confirmed"
    assert untouched["ticket_id"] not in records

    only = tmp_path / "p1.jsonl"
    assert main(["export-cases", "--output", str(only), "--urgency", "P1", "--only", "corrected"]) == 0
    assert [json.loads(x)["ticket_id"] for x in only.read_text().splitlines()] == [corrected["ticket_id"]]
    assert main(["export-cases", "--output", str(only), "--since", "2099-01-01"]) == 0
    assert only.read_text() == ""
    assert main(["export-cases", "--output", str(only), "--urgency", "P7"]) == 2


def test_monthly_report_from_the_store(
    store: TicketStore, tiny_triager: Triager, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    received = datetime(2026, 10, 15, 10, 0, tzinfo=UTC)
    for text in ("信用卡年费乱收", "信用卡被盗刷了，还在扣款", "手机银行登录不了"):
        result = tiny_triager.triage(text, received_at=received).to_dict()
        store.create(NewTicket(result, "sms", received, source="app"), "intake")
    assert main(["report", "--month", "2026-10", "--out", str(tmp_path / "monthly")]) == 0
    assert "3 tickets in 2026-10" in capsys.readouterr().out
    md = (tmp_path / "monthly" / "complaints-2026-10.md").read_text(encoding="utf-8")
    assert "信用卡" in md
    csv_text = (tmp_path / "monthly" / "complaints-2026-10.csv").read_text(encoding="utf-8-sig")
    assert csv_text.startswith("section,key,name,key2,name2,value")
    with pytest.raises(SystemExit):
        main(["report", "--month", "2026-13"])
