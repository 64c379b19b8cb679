"""Pushing P1 and self-harm cases to configured URLs, signed, retried, never lost.

Each delivery is a POST of JSON with the headers
  X-Triage-Event: p1 | self_harm
  X-Triage-Delivery: the outbox id (a receiver may see one twice: deliveries are at least once)
  X-Triage-Timestamp: Unix seconds
  X-Triage-Signature: sha256=HEX, the HMAC-SHA256 with the shared secret of "TIMESTAMP.BODY"
A receiver checks the signature and refuses old timestamps (replays). Failures are
retried with exponential backoff (2 s doubling, capped at an hour, with jitter);
the rows live in the store, so a restart resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
from starlette.concurrency import run_in_threadpool

from serving.store.outbox import Delivery, claim_due, mark_delivered, mark_failed
from serving.store.tables import utcnow
from serving.store.tickets import TicketStore

log = logging.getLogger("triage.webhooks")
BASE_DELAY_S = 2.0
MAX_DELAY_S = 3600.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, max_age_s: float = 300.0) -> bool:
    """What a receiver runs: the signature matches and the timestamp is recent."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failures: 2, 4, 8 ... capped, +-20% jitter."""
    delay = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)


class Sender:
    def __init__(
        self,
        store: TicketStore,
        secret: str,
        interval_s: float = 1.0,
        timeout_s: float = 5.0,
        on_sent: Callable[[bool], None] = lambda ok: None,
    ) -> None:
        self.store = store
        self.on_sent = on_sent
        self.secret = secret
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._wake = asyncio.Event()
        self.sent = 0
        self.failed = 0

    def notify(self) -> None:
        """A new delivery was written: send it now instead of at the next poll."""
        self._wake.set()

    async def send(self, client: httpx.AsyncClient, d: Delivery) -> None:
        body = json.dumps(d.payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Triage-Event": d.event,
            "X-Triage-Delivery": str(d.id),
            "X-Triage-Timestamp": str(stamp),
            "X-Triage-Signature": sign(self.secret, stamp, body),
        }
        try:
            response = await client.post(d.url, content=body, headers=headers)
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.on_sent(error is None)
        if error is None:
            await run_in_threadpool(mark_delivered, self.store, d.id)
            self.sent += 1
            return
        self.failed += 1
        retry_at = utcnow() + timedelta(seconds=backoff(d.attempts + 1))
        log.warning("webhook %s to %s failed (%s); retry at %s", d.id, d.url, error, retry_at.isoformat())
        await run_in_threadpool(mark_failed, self.store, d.id, error, retry_at)

    async def run_once(self, client: httpx.AsyncClient) -> int:
        due = await run_in_threadpool(claim_due, self.store)
        await asyncio.gather(*(self.send(client, d) for d in due))
        return len(due)

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while True:
                try:
                    await self.run_once(client)
                except Exception as exc:  # the store may be briefly unreachable; keep the loop alive
                    log.error("webhook sender: %s", type(exc).__name__)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval_s)
