"""The webhook outbox: rows written with their ticket, claimed by one sender at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from serving.store.tables import Outbox, utcnow
from serving.store.tickets import TicketStore


@dataclass(frozen=True)
class Delivery:
    id: int
    event: str
    url: str
    payload: dict[str, Any]
    attempts: int


def claim_due(store: TicketStore, limit: int = 20, lease: timedelta = timedelta(seconds=60)) -> list[Delivery]:
    """Due deliveries, leased to this sender so another worker does not send them too.
    A sender that dies leaves its lease to expire, and the rows are claimed again."""
    now = utcnow()
    query = (
        select(Outbox)
        .where(
            Outbox.delivered_at.is_(None),
            Outbox.next_attempt_at <= now,
            or_(Outbox.locked_until.is_(None), Outbox.locked_until < now),
        )
        .order_by(Outbox.id)
        .limit(limit)
    )
    if store.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    with store.writing() as s:
        rows = s.scalars(query).all()
        for row in rows:
            row.locked_until = now + lease
        return [Delivery(r.id, r.event, r.url, dict(r.payload), r.attempts) for r in rows]


def mark_delivered(store: TicketStore, delivery_id: int) -> None:
    with store.writing() as s:
        row = s.get_one(Outbox, delivery_id)
        row.delivered_at = utcnow()
        row.attempts += 1
        row.locked_until = None


def mark_failed(store: TicketStore, delivery_id: int, error: str, retry_at: datetime) -> None:
    with store.writing() as s:
        row = s.get_one(Outbox, delivery_id)
        row.attempts += 1
        row.last_error = error[:500]
        row.next_attempt_at = retry_at
        row.locked_until = None


def pending(store: TicketStore) -> list[dict[str, Any]]:
    """Undelivered rows, for operators and tests."""
    with store.session() as s:
        rows = s.scalars(select(Outbox).where(Outbox.delivered_at.is_(None)).order_by(Outbox.id)).all()
        return [
            {"id": r.id, "event": r.event, "ticket_id": r.ticket_id, "attempts": r.attempts, "last_error": r.last_error}
            for r in rows
        ]


def delivered(store: TicketStore) -> list[dict[str, Any]]:
    with store.session() as s:
        rows = s.scalars(select(Outbox).where(Outbox.delivered_at.is_not(None)).order_by(Outbox.id)).all()
        return [{"id": r.id, "event": r.event, "ticket_id": r.ticket_id, "attempts": r.attempts} for r in rows]
