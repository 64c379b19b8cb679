"""The store itself: migrations agree with the tables, raw text is encrypted, keys are hashed,
numbering is per local day, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from serving.auth import KeyRing
from serving.store import open_store
from serving.store.db import migrate
from serving.store.keys import create_key, key_hash, revoke_key, stored_keys
from serving.store.tables import Base
from serving.store.tickets import NewTicket, TicketStore
from tests.serving.conftest import BACKENDS, database, make_settings
from triage.pipeline import Triager

SH = ZoneInfo("Asia/Shanghai")
RAW = "本人王小明，手机13812345678，信用卡被盗刷了"


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TicketStore]:
    with database(request.param, tmp_path) as url:
        store = open_store(make_settings(tmp_path, url, TRIAGE_STORE_RAW_TEXT="1"), SH)
        yield store
        store.engine.dispose()


def test_migrations_build_exactly_the_tables_the_code_uses(fresh: TicketStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with fresh.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert migrate(fresh.engine) == "0001"  # running again changes nothing


def test_raw_text_is_encrypted_at_rest(fresh: TicketStore, tiny_triager: Triager) -> None:
    result = tiny_triager.triage(RAW).to_dict()
    stored, _ = fresh.create(NewTicket(result, "sms", datetime.now(UTC), raw_text=RAW), "test")
    assert "13812345678" not in stored["text_masked"] and "王小明" not in stored["text_masked"]
    with fresh.engine.connect() as c:
        blob = c.execute(text("SELECT raw_text FROM tickets WHERE ticket_id = :t"), {"t": stored["ticket_id"]}).scalar()
    assert blob and b"13812345678" not in bytes(blob)
    assert fresh.raw_text(stored["ticket_id"], "auditor") == RAW
    assert fresh.audit_trail(stored["ticket_id"])[-1]["action"] == "read_raw"


def test_ticket_numbers_follow_the_local_day(fresh: TicketStore, tiny_triager: Triager) -> None:
    result = tiny_triager.triage("年费乱收").to_dict()
    numbers = [fresh.create(NewTicket(result, "sms", datetime.now(UTC)), "t")[0]["ticket_id"] for _ in range(3)]
    today = datetime.now(SH).strftime("%Y%m%d")
    assert numbers == [f"TS{today}-{n:06d}" for n in (1, 2, 3)]


def test_keys_are_stored_hashed_and_can_be_revoked(fresh: TicketStore) -> None:
    key = create_key(fresh.engine, "agent", label="张三")
    assert stored_keys(fresh.engine) == {key_hash(key): "agent"}
    ring = KeyRing({}, lambda: stored_keys(fresh.engine))
    principal = ring.check(key)
    assert principal is not None and principal.role == "agent" and principal.key_id == key_hash(key)[:12]
    assert revoke_key(fresh.engine, key_hash(key)[:12]) == 1
    assert stored_keys(fresh.engine) == {}
    with pytest.raises(ValueError, match="role"):
        create_key(fresh.engine, "root")


def test_a_key_created_while_serving_is_seen(fresh: TicketStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from serving import auth

    monkeypatch.setattr(auth, "REFRESH_S", 0.0)
    ring = KeyRing({}, lambda: stored_keys(fresh.engine))
    key = create_key(fresh.engine, "intake")
    assert ring.check(key) is not None and ring.check("tk_unknown") is None
