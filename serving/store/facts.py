"""Ticket rows as analytics facts (serving/analytics.py knows nothing of the database)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import load_only

from serving.analytics import TicketFacts
from serving.store.tables import Ticket
from serving.store.tickets import TicketStore, ticket_facts

OPEN_STATUSES = ("new", "in_progress", "replied")
# Analytics reads these columns only: the full result JSON of thousands of rows is not needed to count them.
_COLUMNS = (
    Ticket.ticket_id,
    Ticket.received_at,
    Ticket.category,
    Ticket.issue,
    Ticket.urgency,
    Ticket.sentiment,
    Ticket.department,
    Ticket.source,
    Ticket.status,
    Ticket.first_response_by,
    Ticket.resolve_by,
    Ticket.first_response_at,
    Ticket.resolved_at,
    Ticket.needs_review,
)


def load_facts(
    store: TicketStore, since: datetime | None = None, until: datetime | None = None, open_only: bool = False
) -> list[TicketFacts]:
    """Tickets received in [since, until) (either bound may be left out); `open_only`: not yet resolved."""
    query = select(Ticket).options(load_only(*_COLUMNS))
    if since is not None:
        query = query.where(Ticket.received_at >= since)
    if until is not None:
        query = query.where(Ticket.received_at < until)
    if open_only:
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    with store.session() as s:
        return [ticket_facts(row) for row in s.scalars(query.order_by(Ticket.id))]


def first_received(store: TicketStore) -> datetime | None:
    """When the history starts: spike baselines must not count the days before it as quiet."""
    with store.session() as s:
        return s.scalar(select(func.min(Ticket.received_at)))


def review_counts(store: TicketStore, since: datetime, until: datetime) -> tuple[int, int]:
    """(tickets received in [since, until), those among them that the model left for review)."""
    query = select(func.count(Ticket.id), func.sum(case((Ticket.needs_review, 1), else_=0))).where(
        Ticket.received_at >= since, Ticket.received_at < until
    )
    with store.session() as s:
        total, review = s.execute(query).one()
    return int(total or 0), int(review or 0)
