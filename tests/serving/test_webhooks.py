"""P1 and self-harm webhooks: signed, retried with backoff, kept across a restart, pushed at once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from serving import webhooks
from serving.app import create_app
from serving.auth import KeyRing, parse_env_keys
from serving.store import open_store
from serving.store.outbox import delivered, pending
from serving.store.tickets import NewTicket, TicketStore
from serving.webhooks import Sender, backoff, sign, verify
from tests.serving.conftest import KEYS, LiveServer, make_settings
from triage.pipeline import Triager

SECRET = "s3cret"
FRAUD = "我的信用卡被盗刷1.2万元，还在扣款，快处理"
SELF_HARM = "贷款还不上了，催收天天打电话，我真的不想活了"
CALM = "想咨询一下信用卡积分怎么兑换"


class Receiver:
    """A real HTTP endpoint that fails its first `failures` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append({"headers": dict(self.headers), "body": body})
                ok = len(receiver.calls) > receiver.failures
                self.send_response(200 if ok else 503)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def store_with(tmp_path: Path, urls: tuple[str, ...]) -> TicketStore:
    settings = make_settings(tmp_path, None, TRIAGE_WEBHOOK_URLS=",".join(urls))
    return open_store(settings, ZoneInfo("Asia/Shanghai"))


def open_ticket(store: TicketStore, triager: Triager, text: str) -> dict[str, Any]:
    result = triager.triage(text).to_dict()
    stored, _ = store.create(NewTicket(result, "sms", datetime.fromisoformat(result["received_at"])), "test")
    return stored


def deliver(store: TicketStore, rounds: int = 1) -> Sender:
    sender = Sender(store, SECRET)

    async def go() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(rounds):
                await sender.run_once(client)
                await asyncio.sleep(0.1)

    asyncio.run(go())
    return sender


def test_signature_round_trip_and_replay_window() -> None:
    body = b'{"ticket_id": "TS20261123-000001"}'
    now = int(time.time())
    assert verify(SECRET, str(now), body, sign(SECRET, now, body))
    assert not verify(SECRET, str(now), body + b" ", sign(SECRET, now, body))
    assert not verify("other", str(now), body, sign(SECRET, now, body))
    assert not verify(SECRET, str(now - 3600), body, sign(SECRET, now - 3600, body))


@pytest.mark.parametrize(("attempts", "low", "high"), [(1, 1.6, 2.4), (2, 3.2, 4.8), (5, 25.6, 38.4), (40, 2880, 4320)])
def test_backoff_doubles_and_is_capped(attempts: int, low: float, high: float) -> None:
    assert all(low <= backoff(attempts) <= high for _ in range(50))


def test_only_p1_and_self_harm_cases_are_queued(tmp_path: Path, tiny_triager: Triager) -> None:
    store = store_with(tmp_path, ("http://a.example/hook", "http://b.example/hook"))
    fraud = open_ticket(store, tiny_triager, FRAUD)
    harm = open_ticket(store, tiny_triager, SELF_HARM)
    open_ticket(store, tiny_triager, CALM)
    queued = sorted((row["ticket_id"], row["event"]) for row in pending(store))
    # One delivery per case and URL; self-harm (also P1 here) is named as the more specific event.
    assert queued == sorted([(fraud["ticket_id"], "p1"), (harm["ticket_id"], "self_harm")] * 2)


def test_signed_delivery_retried_until_it_succeeds(
    tmp_path: Path, tiny_triager: Triager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "BASE_DELAY_S", 0.01)
    with Receiver(failures=2) as receiver:
        store = store_with(tmp_path, (receiver.url,))
        ticket = open_ticket(store, tiny_triager, FRAUD)
        deliver(store, rounds=6)
    assert len(receiver.calls) == 3
    last = receiver.calls[-1]
    headers = {k.lower(): v for k, v in last["headers"].items()}
    assert verify(SECRET, headers["x-triage-timestamp"], last["body"], headers["x-triage-signature"])
    payload = json.loads(last["body"])
    assert payload["ticket_id"] == ticket["ticket_id"] and payload["urgency"] == "P1"
    assert "1.2万" in payload["text_masked"]
    assert pending(store) == [] and delivered(store)[0]["attempts"] == 3


def test_undelivered_webhooks_survive_a_restart(tmp_path: Path, tiny_triager: Triager) -> None:
    with Receiver() as receiver:
        store = store_with(tmp_path, (receiver.url,))
        ticket = open_ticket(store, tiny_triager, SELF_HARM)
        store.engine.dispose()  # the process stops before sending anything
        restarted = store_with(tmp_path, (receiver.url,))
        assert [row["ticket_id"] for row in pending(restarted)] == [ticket["ticket_id"]]
        deliver(restarted)
    assert [json.loads(c["body"])["ticket_id"] for c in receiver.calls] == [ticket["ticket_id"]]
    assert pending(restarted) == []


@pytest.fixture
def hooked_server(tmp_path: Path, tiny_triager: Triager) -> Iterator[tuple[LiveServer, Receiver]]:
    with Receiver() as receiver:
        settings = make_settings(tmp_path, None, TRIAGE_WEBHOOK_URLS=receiver.url, TRIAGE_WEBHOOK_SECRET=SECRET)
        store = open_store(settings, tiny_triager.config.deployment.timezone)
        app = create_app(settings, triager=tiny_triager, keys=KeyRing(parse_env_keys(KEYS)), store=store)
        with LiveServer(app) as live:
            yield live, receiver


def test_the_service_pushes_a_p1_at_once(hooked_server: tuple[LiveServer, Receiver]) -> None:
    server, receiver = hooked_server
    r = httpx.post(f"{server.url}/v1/triage", json={"text": FRAUD}, headers={"Authorization": "Bearer intake-key"})
    assert r.status_code == 200
    deadline = time.monotonic() + 5
    while not receiver.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.calls, "no webhook within 5 s"
    assert json.loads(receiver.calls[0]["body"])["ticket_id"] == r.json()["ticket_id"]
