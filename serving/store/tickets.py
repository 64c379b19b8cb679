"""Tickets: numbering, idempotency, the status machine, feedback, the audit trail.

Every method is one short transaction. Ticket numbers are TS + local date +
a per-day sequence taken from a counter row in the same transaction as the
ticket, so a failed insert (a duplicate idempotency key) leaves no gap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Select, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.analytics import TicketFacts, sla_status
from serving.store.crypto import RawTextCipher
from serving.store.db import session_factory
from serving.store.tables import AuditEntry, Counter, Feedback, Outbox, Ticket, utcnow
from triage import HEADS
from triage.errors import TriageError

Q = TypeVar("Q", bound=Select)
STATUSES = ("new", "in_progress", "replied", "resolved")
STATUS_NAMES = {"new": "待处理", "in_progress": "处理中", "replied": "已答复", "resolved": "已解决"}
# A reply or resolution can be taken back: the customer writes again (reopen).
TRANSITIONS = {
    "new": {"in_progress"},
    "in_progress": {"replied"},
    "replied": {"resolved", "in_progress"},
    "resolved": {"in_progress"},
}
WEBHOOK_SIGNALS = ("self_harm",)


class NotFoundError(TriageError):
    code = "not_found"


class InvalidTransitionError(TriageError):
    code = "invalid_transition"


@dataclass(frozen=True)
class NewTicket:
    """A triaged case to store. `result` is TriageResult.to_dict() (masked text only)."""

    result: dict[str, Any]
    channel: str
    received_at: datetime
    source: str | None = None
    customer_id: str | None = None
    idempotency_key: str | None = None
    raw_text: str | None = None


@dataclass(frozen=True)
class TicketFilter:
    status: str | None = None
    category: str | None = None
    urgency: str | None = None
    department: str | None = None
    assignee: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Webhooks:
    urls: tuple[str, ...] = ()
    events: tuple[str, ...] = field(default=("p1", "self_harm"))

    def event_for(self, result: dict[str, Any]) -> str | None:
        """One push per case and URL: self_harm when that signal is present (the more specific), else p1."""
        found = [e for e in ("self_harm", "p1") if e in self.events]
        if "self_harm" in found and any(s["type"] in WEBHOOK_SIGNALS for s in result["signals"]):
            return "self_harm"
        if "p1" in found and result["urgency"]["label"] == "P1":
            return "p1"
        return None


class _SqliteWrites:
    """SQLite allows one writer. Write transactions take the lock when they begin (BEGIN
    IMMEDIATE, so a read never has to turn into a write and fail), and the threads of one
    process queue on a lock instead of on SQLite's busy handler, whose sleeps grow to 100 ms
    and made the latency tail under load; other processes still wait on the busy timeout.
    Reads begin normally and, with WAL, never wait for a writer."""

    def __init__(self, engine: Engine) -> None:
        self.lock = threading.Lock()
        self.local = threading.local()

        @event.listens_for(engine, "connect")
        def _no_implicit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if getattr(self.local, "writing", False) else "BEGIN")

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self.lock:
            self.local.writing = True
            try:
                yield
            finally:
                self.local.writing = False


class TicketStore:
    def __init__(
        self,
        engine: Engine,
        tz: ZoneInfo,
        cipher: RawTextCipher | None = None,
        webhooks: Webhooks | None = None,
        due_soon: timedelta = timedelta(hours=2),
    ) -> None:
        self._sqlite = _SqliteWrites(engine) if engine.dialect.name == "sqlite" else None
        self.engine = engine
        self.tz = tz
        self.cipher = cipher
        self.webhooks = webhooks or Webhooks()
        self.due_soon = due_soon
        self.due_soon = due_soon
        self._sessions = session_factory(engine)
        self._upsert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def session(self) -> Session:
        """A session for reading."""
        return self._sessions()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session in a write transaction, committed when the block ends."""
        with self._sqlite.writing() if self._sqlite else nullcontext(), self._sessions() as s, s.begin():
            yield s

    # -- creating -------------------------------------------------------------------

    def by_idempotency_key(self, key: str) -> dict[str, Any] | None:
        with self.session() as s:
            ticket = s.scalar(select(Ticket).where(Ticket.idempotency_key == key))
            return None if ticket is None else ticket_result(ticket)

    def prior_tickets(self, customer_id: str | None, now: datetime, window_days: int) -> int:
        """How many tickets the same customer opened within the repeat window."""
        if not customer_id:
            return 0
        with self.session() as s:
            count = s.scalar(
                select(func.count(Ticket.id)).where(
                    Ticket.customer_id == customer_id, Ticket.received_at >= now - timedelta(days=window_days)
                )
            )
            return int(count or 0)

    def _next_number(self, s: Session, now: datetime) -> str:
        day = now.astimezone(self.tz).strftime("%Y%m%d")
        stmt = (
            self._upsert(Counter)
            .values(day=day, last=1)
            .on_conflict_do_update(index_elements=[Counter.day], set_={"last": Counter.last + 1})
            .returning(Counter.last)
        )
        return f"TS{day}-{int(s.execute(stmt).scalar_one()):06d}"

    def create(
        self, new: NewTicket, actor: str, numbered: Callable[[str], dict[str, Any]] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Store a triaged case; returns (result with ticket_id, created). `numbered(ticket_id)` gives
        the result once numbered (the draft quotes the number). A known idempotency key returns
        the original ticket and created=False, also when two posts race."""
        if new.idempotency_key:
            existing = self.by_idempotency_key(new.idempotency_key)
            if existing is not None:
                return existing, False
        try:
            with self.writing() as s:
                now = utcnow()
                ticket_id = self._next_number(s, now)
                result = numbered(ticket_id) if numbered else new.result | {"ticket_id": ticket_id}
                ticket = _ticket_row(ticket_id, new, result, now)
                if new.raw_text is not None and self.cipher is not None:
                    ticket.raw_text = self.cipher.encrypt(new.raw_text)
                s.add(ticket)
                s.flush()
                s.add(AuditEntry(ticket_id=ticket_id, actor=actor, action="create", detail={"source": new.source}))
                event_name = self.webhooks.event_for(result)
                if event_name is not None:
                    payload = webhook_payload(event_name, result)
                    s.add_all(
                        Outbox(event=event_name, ticket_id=ticket_id, url=u, payload=payload)
                        for u in self.webhooks.urls
                    )
            return result, True
        except IntegrityError:
            if not new.idempotency_key:
                raise
            existing = self.by_idempotency_key(new.idempotency_key)
            if existing is None:
                raise
            return existing, False

    # -- reading --------------------------------------------------------------------

    def _audit(self, s: Session, actor: str, action: str, ticket_id: str | None, **detail: Any) -> None:
        s.add(AuditEntry(ticket_id=ticket_id, actor=actor, action=action, detail=detail))

    def _load(self, s: Session, ticket_id: str, for_update: bool = False) -> Ticket:
        query = select(Ticket).where(Ticket.ticket_id == ticket_id)
        if for_update:
            query = query.with_for_update()
        ticket = s.scalar(query)
        if ticket is None:
            raise NotFoundError(f"no ticket {ticket_id}")
        return ticket

    def get(self, ticket_id: str, actor: str) -> dict[str, Any]:
        with self.writing() as s:
            ticket = self._load(s, ticket_id)
            feedback = s.scalars(select(Feedback).where(Feedback.ticket_id == ticket_id).order_by(Feedback.id)).all()
            self._audit(s, actor, "read", ticket_id)
            return ticket_view(ticket, due_soon=self.due_soon) | {"feedback": [feedback_view(f) for f in feedback]}

    def list_page(
        self, filters: TicketFilter, limit: int, cursor: int | None, actor: str
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; `cursor` is the id after which to continue (from the previous page)."""
        query = _filtered(select(Ticket), filters)
        if cursor is not None:
            query = query.where(Ticket.id < cursor)
        with self.writing() as s:
            rows = s.scalars(query.order_by(Ticket.id.desc()).limit(limit + 1)).all()
            page = rows[:limit]
            self._audit(s, actor, "list", None, tickets=[t.ticket_id for t in page])
            next_cursor = page[-1].id if len(rows) > limit and page else None
            return [ticket_view(t, due_soon=self.due_soon) for t in page], next_cursor

    def audit_trail(self, ticket_id: str) -> list[dict[str, Any]]:
        with self.session() as s:
            entries = s.scalars(select(AuditEntry).where(AuditEntry.ticket_id == ticket_id).order_by(AuditEntry.id))
            return [{"actor": e.actor, "action": e.action, "at": e.at.isoformat(), "detail": e.detail} for e in entries]

    def raw_text(self, ticket_id: str, actor: str) -> str | None:
        with self.writing() as s:
            ticket = self._load(s, ticket_id)
            self._audit(s, actor, "read_raw", ticket_id)
            if ticket.raw_text is None or self.cipher is None:
                return None
            return self.cipher.decrypt(ticket.raw_text)

    def tickets(self, filters: TicketFilter) -> list[Ticket]:
        """Rows for analytics and exports (no audit entry: no person reads them one by one)."""
        with self.session() as s:
            return list(s.scalars(_filtered(select(Ticket), filters).order_by(Ticket.id)).all())

    # -- changing -------------------------------------------------------------------

    def update(
        self, ticket_id: str, actor: str, status: str | None = None, assignee: str | None = None
    ) -> dict[str, Any]:
        with self.writing() as s:
            ticket = self._load(s, ticket_id, for_update=True)
            now = utcnow()
            if status is not None and status != ticket.status:
                if status not in TRANSITIONS.get(ticket.status, set()):
                    allowed = ", ".join(sorted(TRANSITIONS.get(ticket.status, ()))) or "none"
                    raise InvalidTransitionError(f"{ticket.status} -> {status} is not allowed (allowed: {allowed})")
                self._audit(s, actor, "status", ticket_id, before=ticket.status, after=status)
                if status == "replied" and ticket.first_response_at is None:
                    ticket.first_response_at = now
                if status == "resolved":
                    ticket.resolved_at = now
                if ticket.status == "resolved":
                    ticket.reopened += 1
                    ticket.resolved_at = None
                ticket.status = status
            if assignee is not None and assignee != ticket.assignee:
                self._audit(s, actor, "assign", ticket_id, before=ticket.assignee, after=assignee)
                ticket.assignee = assignee
            ticket.updated_at = now
            return ticket_view(ticket, due_soon=self.due_soon)

    def add_feedback(self, ticket_id: str, labels: dict[str, str], note: str | None, actor: str) -> dict[str, Any]:
        """An agent's correction (or confirmation): stored as a labelled case with who and when."""
        with self.writing() as s:
            self._load(s, ticket_id)
            row = Feedback(ticket_id=ticket_id, note=note, author=actor, created_at=utcnow(), **labels)
            s.add(row)
            s.flush()
            self._audit(s, actor, "feedback", ticket_id, labels=labels)
            return feedback_view(row)

    def labelled_cases(self, filters: TicketFilter) -> list[tuple[Ticket, Feedback]]:
        """Each ticket with feedback, paired with its latest feedback."""
        latest = select(Feedback.ticket_id, func.max(Feedback.id).label("fid")).group_by(Feedback.ticket_id).subquery()
        query = _filtered(
            select(Ticket, Feedback)
            .join(latest, latest.c.ticket_id == Ticket.ticket_id)
            .join(Feedback, Feedback.id == latest.c.fid),
            filters,
        )
        with self.session() as s:
            return [(t, f) for t, f in s.execute(query.order_by(Ticket.id)).all()]

    def record(self, actor: str, action: str, ticket_id: str | None = None, **detail: Any) -> None:
        with self.writing() as s:
            self._audit(s, actor, action, ticket_id, **detail)


def _filtered(query: Q, f: TicketFilter) -> Q:
    for column, value in (
        (Ticket.status, f.status),
        (Ticket.category, f.category),
        (Ticket.urgency, f.urgency),
        (Ticket.department, f.department),
        (Ticket.assignee, f.assignee),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.since is not None:
        query = query.where(Ticket.received_at >= f.since)
    if f.until is not None:
        query = query.where(Ticket.received_at < f.until)
    return query


def _ticket_row(ticket_id: str, new: NewTicket, result: dict[str, Any], now: datetime) -> Ticket:
    return Ticket(
        ticket_id=ticket_id,
        idempotency_key=new.idempotency_key,
        customer_id=new.customer_id,
        source=new.source,
        channel=new.channel,
        status="new",
        category=result["category"]["label"],
        issue=result["issue"]["label"],
        urgency=result["urgency"]["label"],
        sentiment=result["sentiment"]["label"],
        department=result["route"]["department"],
        queue=result["route"]["queue"],
        needs_review=any(result[h]["needs_review"] for h in HEADS),
        received_at=new.received_at,
        created_at=now,
        updated_at=now,
        first_response_by=datetime.fromisoformat(result["sla"]["first_response_by"]),
        resolve_by=datetime.fromisoformat(result["sla"]["resolve_by"]),
        reopened=0,
        text_masked=result["text_masked"],
        result=result,
        model_version=f"{result['model']['name']} {result['model']['version']}"[:96],
    )


def webhook_payload(event_name: str, result: dict[str, Any]) -> dict[str, Any]:
    """What a P1 or self-harm alert carries: enough to act on, masked text only."""
    return {
        "event": event_name,
        "ticket_id": result["ticket_id"],
        "urgency": result["urgency"]["label"],
        "category": result["category"]["label"],
        "department": result["route"]["department"],
        "signals": [{"type": s["type"], "text": s["text"]} for s in result["signals"]],
        "text_masked": result["text_masked"],
        "sla": result["sla"],
        "received_at": result.get("received_at"),
    }


def ticket_result(ticket: Ticket) -> dict[str, Any]:
    return dict(ticket.result)


def ticket_facts(row: Ticket) -> TicketFacts:
    """The one conversion from a stored ticket to what analytics counts."""
    return TicketFacts(
        ticket_id=row.ticket_id,
        received_at=row.received_at,
        category=row.category,
        issue=row.issue,
        urgency=row.urgency,
        sentiment=row.sentiment,
        department=row.department,
        source=row.source,
        status=row.status,
        first_response_by=row.first_response_by,
        resolve_by=row.resolve_by,
        first_response_at=row.first_response_at,
        resolved_at=row.resolved_at,
        needs_review=row.needs_review,
    )


def ticket_view(
    ticket: Ticket, now: datetime | None = None, due_soon: timedelta = timedelta(hours=2)
) -> dict[str, Any]:
    [state] = sla_status([ticket_facts(ticket)], now or utcnow(), due_soon).tickets
    return {
        "ticket_id": ticket.ticket_id,
        "status": ticket.status,
        "status_name": STATUS_NAMES[ticket.status],
        "assignee": ticket.assignee,
        "customer_id": ticket.customer_id,
        "source": ticket.source,
        "channel": ticket.channel,
        "category": ticket.category,
        "issue": ticket.issue,
        "urgency": ticket.urgency,
        "sentiment": ticket.sentiment,
        "department": ticket.department,
        "queue": ticket.queue,
        "needs_review": ticket.needs_review,
        "received_at": ticket.received_at,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "reopened": ticket.reopened,
        "sla": {
            "first_response_by": ticket.first_response_by,
            "resolve_by": ticket.resolve_by,
            "first_response_at": ticket.first_response_at,
            "resolved_at": ticket.resolved_at,
            "first_response": state.first_response,
            "resolution": state.resolution,
        },
        "text_masked": ticket.text_masked,
        "result": ticket.result,
    }


def feedback_view(f: Feedback) -> dict[str, Any]:
    return {
        "id": f.id,
        "ticket_id": f.ticket_id,
        "labels": {h: getattr(f, h) for h in HEADS if getattr(f, h) is not None},
        "note": f.note,
        "author": f.author,
        "created_at": f.created_at,
    }
