"""Intake: validate, look up the customer's history, triage, store as tickets.

Routes stay thin; this is where a complaint becomes a ticket. Database work
runs in the thread pool and model work in the inference runner, so the event
loop never waits on either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from serving.schemas import HandoffIn, TriageIn
from serving.store.tickets import NewTicket, TicketStore
from triage.handoff import Turn, handoff
from triage.pipeline import Triager, TriageRequest
from triage.result import TriageResult

Infer = Callable[[list[TriageRequest]], Awaitable[list[TriageResult]]]


@dataclass
class Intake:
    store: TicketStore
    current: Callable[[], Triager]  # the model serving now (it may be swapped by a reload)
    infer: Infer
    after_ticket: Callable[[dict[str, Any]], None] = lambda _: None  # metrics, webhook wake-up

    def _aware(self, moment: datetime) -> datetime:
        return self.current().config.deployment.local(moment)

    def _validate(self, items: Sequence[TriageIn]) -> None:
        """Every item is checked before any model call or ticket: one bad item fails the batch."""
        triager = self.current()
        for i, item in enumerate(items):
            try:
                triager.prepare(item.text)
            except ValueError as exc:
                raise type(exc)(f"item {i}: {exc}" if len(items) > 1 else str(exc)) from exc

    def _prior(self, customer_id: str | None, received_at: datetime) -> int:
        window = self.current().config.signals["repeat"].store_window_days
        return self.store.prior_tickets(customer_id, received_at, window) if window else 0

    async def triage(self, items: Sequence[TriageIn], actor: str) -> list[tuple[dict[str, Any], bool]]:
        """One result per item, in order; (result, created). Known idempotency keys return the original."""
        self._validate(items)
        now = datetime.now(UTC)
        received = [self._aware(item.received_at or now) for item in items]
        found: dict[int, dict[str, Any]] = {}
        priors: dict[int, int] = {}

        def look_up() -> None:
            for i, item in enumerate(items):
                original = self.store.by_idempotency_key(item.idempotency_key) if item.idempotency_key else None
                if original is not None:
                    found[i] = original
                else:
                    priors[i] = self._prior(item.customer_id, received[i])

        await run_in_threadpool(look_up)
        todo = [i for i in range(len(items)) if i not in found]
        requests = [TriageRequest(items[i].text, items[i].channel, received[i], None, priors[i]) for i in todo]
        results = dict(zip(todo, await self.infer(requests) if requests else [], strict=True))

        def store_all() -> list[tuple[dict[str, Any], bool]]:
            out = []
            for i, item in enumerate(items):
                if i in found:
                    out.append((found[i], False))
                    continue
                out.append(self._store(results[i], item.text, item, actor))
            return out

        return await run_in_threadpool(store_all)

    def _store(
        self,
        result: TriageResult,
        raw: str,
        item: TriageIn | HandoffIn,
        actor: str,
        extra: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        triager = self.current()
        new = NewTicket(
            result=result.to_dict(),
            channel=item.channel,
            received_at=datetime.fromisoformat(result.received_at),
            source=item.source,
            customer_id=item.customer_id,
            idempotency_key=item.idempotency_key,
            raw_text=raw if self.store.cipher is not None else None,
        )
        stored, created = self.store.create(
            new, actor, lambda tid: triager.with_ticket(result, tid).to_dict() | (extra or {})
        )
        if created:
            self.after_ticket(stored)
        return stored, created

    async def handoff(self, body: HandoffIn, actor: str) -> tuple[dict[str, Any], bool]:
        """The customer's turns as one case, stored as a ticket, with the handoff note."""
        if body.idempotency_key:
            original = await run_in_threadpool(self.store.by_idempotency_key, body.idempotency_key)
            if original is not None:
                return original, False
        turns = [Turn(t.role, t.text, t.time) for t in body.conversation]
        received = body.received_at or next((t.time for t in reversed(turns) if t.time), None) or datetime.now(UTC)
        received = self._aware(received)
        prior = await run_in_threadpool(self._prior, body.customer_id, received)
        triager = self.current()
        result, note = await run_in_threadpool(handoff, triager, turns, body.channel, received, None, prior)
        raw = "\n".join(t.text for t in turns if t.role == "customer")
        return await run_in_threadpool(self._store, result, raw, body, actor, {"handoff": note.to_dict()})
