"""Tickets: list, read, change status or assignee, the audit trail, and agents' feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from serving.deps import AdminDep, AgentDep, ConfigDep, StoreDep
from serving.errors import ApiError
from serving.schemas import (
    AuditOut,
    ErrorOut,
    FeedbackIn,
    FeedbackOut,
    Moment,
    Status,
    TicketOut,
    TicketPage,
    TicketPatch,
)
from serving.store.tickets import TicketFilter
from triage import HEADS
from triage.config import TriageConfig
from triage.errors import UnknownLabelError

router = APIRouter(prefix="/v1", tags=["tickets"])
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422)}


def check_label(config: TriageConfig, head: str, label: str | None) -> None:
    if label is not None and label not in config.label_ids(head):
        raise UnknownLabelError(f"unknown {head} label {label!r}; use one of {', '.join(config.label_ids(head))}")


@router.get("/tickets", response_model=TicketPage, responses=ERRORS)
async def list_tickets(
    store: StoreDep,
    config: ConfigDep,
    principal: AgentDep,
    status: Status | None = None,
    category: str | None = None,
    urgency: str | None = None,
    department: str | None = None,
    assignee: str | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
) -> dict[str, Any]:
    """Newest first. Pass `next_cursor` of a page as `cursor` to read the next one."""
    check_label(config, "category", category)
    check_label(config, "urgency", urgency)
    local = config.deployment.local
    filters = TicketFilter(
        status=status,
        category=category,
        urgency=urgency,
        department=department,
        assignee=assignee,
        since=None if since is None else local(since),
        until=None if until is None else local(until),
    )
    items, next_cursor = await run_in_threadpool(
        store.list_page, filters, limit, int(cursor) if cursor else None, principal.key_id
    )
    return {"items": items, "next_cursor": None if next_cursor is None else str(next_cursor)}


@router.get("/tickets/{ticket_id}", response_model=TicketOut, responses=ERRORS)
async def get_ticket(ticket_id: str, store: StoreDep, principal: AgentDep) -> dict[str, Any]:
    """One ticket with its feedback; the read is recorded in the audit trail."""
    return await run_in_threadpool(store.get, ticket_id, principal.key_id)


@router.patch("/tickets/{ticket_id}", response_model=TicketOut, responses=ERRORS)
async def patch_ticket(ticket_id: str, body: TicketPatch, store: StoreDep, principal: AgentDep) -> dict[str, Any]:
    """Status (待处理 new -> 处理中 in_progress -> 已答复 replied -> 已解决 resolved; a resolved or replied
    ticket may be reopened to in_progress) and assignee. Other transitions: 409 invalid_transition."""
    if body.status is None and body.assignee is None:
        raise ApiError("validation_error", "give a status or an assignee")
    return await run_in_threadpool(store.update, ticket_id, principal.key_id, body.status, body.assignee)


@router.get("/tickets/{ticket_id}/audit", response_model=list[AuditOut], responses=ERRORS)
async def ticket_audit(ticket_id: str, store: StoreDep, principal: AdminDep) -> list[dict[str, Any]]:
    """Every read and change of the ticket: who, when, what (admin only)."""

    def trail() -> list[dict[str, Any]]:
        store.get(ticket_id, principal.key_id)  # 404 for an unknown ticket; reading the trail is a read too
        return store.audit_trail(ticket_id)

    return await run_in_threadpool(trail)


@router.post("/feedback", response_model=FeedbackOut, responses=ERRORS)
async def feedback(body: FeedbackIn, store: StoreDep, config: ConfigDep, principal: AgentDep) -> dict[str, Any]:
    """An agent's correction of a ticket's labels (labels left out are confirmed as predicted);
    stored as a labelled case with who and when, for retraining."""
    labels = {head: getattr(body, head) for head in HEADS if getattr(body, head) is not None}
    for head, label in labels.items():
        check_label(config, head, label)
    return await run_in_threadpool(store.add_feedback, body.ticket_id, labels, body.note, principal.key_id)
