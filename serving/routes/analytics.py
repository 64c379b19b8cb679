"""Analytics for the complaint team's lead: volume over time, spike alerts, the open-ticket overview."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from serving import analytics
from serving.analytics import AnalyticsError, TicketFacts, TicketSla
from serving.analytics_schemas import AlertOut, Bucket, LabelsOut, OverviewOut, VolumeBy, VolumeOut
from serving.deps import AgentDep, ConfigDep, StoreDep, TriagerDep
from serving.schemas import ErrorOut
from serving.store.facts import OPEN_STATUSES, first_received, load_facts, review_counts
from serving.store.tickets import STATUS_NAMES
from triage import HEADS
from triage.config import TriageConfig
from triage.errors import ConfigError

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (401, 403, 422, 503)}
BASELINE_DAYS = 14
WINDOW_PATTERN = r"^(today|([1-9]|1[0-9]|2[0-4])h)$"
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)

Since = Annotated[datetime | None, Query(description="ISO 8601; without a zone: the deployment's local time")]
Until = Annotated[datetime | None, Query(description="exclusive; default: now")]
Days = Annotated[int, Query(ge=1, le=366, description="without `since`: this many local days up to `until`")]


def _local(moment: datetime | None, tz: ZoneInfo, name: str) -> datetime | None:
    if moment is None:
        return None
    aware = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
    # Bounded, so that no bucket or day arithmetic can run off the calendar.
    if not EARLIEST <= aware < LATEST:
        raise AnalyticsError(f"{name} must lie between {EARLIEST.year} and {LATEST.year - 1}")
    return aware.astimezone(tz)


def _window(
    since: datetime | None, until: datetime | None, days: int, now: datetime, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    """[since, until): by default whole local days, today included, so the first day's bucket is not cut short."""
    end = _local(until, tz, "until") or now
    start = _local(since, tz, "since")
    if start is None:
        last_day = (end - timedelta(microseconds=1)).date()
        start = datetime.combine(last_day - timedelta(days=days - 1), time(), tzinfo=tz)
    if end <= start:
        raise AnalyticsError("until must be later than since")
    return start, end


def _name(config: TriageConfig, head: str, key: str) -> str:
    if head not in HEADS:
        return key  # departments are named in Chinese already
    try:
        return config.label_name(head, key)
    except ConfigError:  # a label of an earlier taxonomy, still on old tickets
        return key


def _volume_keys(config: TriageConfig, by: str) -> list[str]:
    if by in HEADS:
        return list(config.label_ids(by))
    routing = config.routing
    return list(dict.fromkeys([*routing.by_category.values(), *(o.department for o in routing.overrides)]))


@router.get("/volume", response_model=VolumeOut, responses=ERRORS)
async def volume(
    store: StoreDep,
    config: ConfigDep,
    _: AgentDep,
    by: VolumeBy = "category",
    bucket: Bucket = "day",
    since: Since = None,
    until: Until = None,
    days: Days = 30,
) -> dict[str, Any]:
    """Tickets received per local day (or hour) and per category, issue, urgency or department, zeros
    included. Default: the last 30 local days, today included, by day."""
    tz = config.deployment.timezone

    def compute() -> dict[str, Any]:
        start, end = _window(since, until, days, datetime.now(tz), tz)
        facts = load_facts(store, start, end)
        points = analytics.volume(facts, by, bucket, tz, start, end, keys=_volume_keys(config, by))
        keys = list(dict.fromkeys(p.key for p in points))
        step = max(len(keys), 1)  # points run bucket by bucket, every key in each
        series = []
        for i, key in enumerate(keys):
            counts = [p.count for p in points[i::step]]
            series.append({"key": key, "name": _name(config, by, key), "counts": counts, "total": sum(counts)})
        return {
            "by": by,
            "bucket": bucket,
            "timezone": str(tz),
            "since": start,
            "until": end,
            "buckets": [p.bucket_start for p in points[::step]],
            "series": series,
            "total": sum(s["total"] for s in series),
        }

    return await run_in_threadpool(compute)


@router.get("/alerts", response_model=list[AlertOut], responses=ERRORS)
async def alerts(
    store: StoreDep,
    config: ConfigDep,
    _: AgentDep,
    window: Annotated[str, Query(pattern=WINDOW_PATTERN, description="'today' or 1h..24h ending now")] = "24h",
) -> list[dict[str, Any]]:
    """Categories whose volume in the window is well above the same stretch of time on the 14 days
    before (serving/analytics.py explains the rule), highest score first."""
    tz = config.deployment.timezone
    span: timedelta | Literal["today"] = "today" if window == "today" else timedelta(hours=int(window[:-1]))

    def compute() -> list[dict[str, Any]]:
        now = datetime.now(tz)
        facts = load_facts(store, since=now - (BASELINE_DAYS + 1) * analytics.DAY)
        found = analytics.alerts(
            facts,
            now,
            tz,
            window=span,
            baseline_days=BASELINE_DAYS,
            categories=config.label_ids("category"),
            history_start=first_received(store),
        )
        return [asdict(a) for a in found]

    return await run_in_threadpool(compute)


def _open_ticket(f: TicketFacts, sla: TicketSla, tz: ZoneInfo) -> dict[str, Any]:
    answered = f.responded_at is not None
    return {
        "ticket_id": f.ticket_id,
        "urgency": f.urgency,
        "category": f.category,
        "issue": f.issue,
        "department": f.department,
        "status": f.status,
        "received_at": f.received_at.astimezone(tz),
        "first_response_by": f.first_response_by.astimezone(tz),
        "resolve_by": f.resolve_by.astimezone(tz),
        "first_response": sla.first_response,
        "resolution": sla.resolution,
        "due_target": "resolution" if answered else "first_response",
        "due_at": (f.resolve_by if answered else f.first_response_by).astimezone(tz),
    }


@router.get("/overview", response_model=OverviewOut, responses=ERRORS)
async def overview(
    request: Request,
    store: StoreDep,
    triager: TriagerDep,
    _: AgentDep,
    since: Since = None,
    until: Until = None,
    days: Days = 30,
    limit: Annotated[int, Query(ge=1, le=2000, description="open tickets listed at most")] = 500,
) -> dict[str, Any]:
    """What the dashboard shows: open tickets by urgency with their deadlines and service-level state,
    the model serving, and the share of tickets received in the window that the model left for review."""
    config = triager.config
    tz = config.deployment.timezone
    due_soon_minutes: int = request.app.state.settings.due_soon_minutes
    due_soon = timedelta(minutes=due_soon_minutes)

    def compute() -> dict[str, Any]:
        now = datetime.now(tz)
        start, end = _window(since, until, days, now, tz)
        received, needs_review = review_counts(store, start, end)
        open_facts = load_facts(store, open_only=True)
        status = analytics.sla_status(open_facts, now, due_soon)
        rank = {u: i for i, u in enumerate(config.label_ids("urgency"))}
        tickets = sorted(
            (_open_ticket(f, s, tz) for f, s in zip(open_facts, status.tickets, strict=True)),
            key=lambda t: (rank.get(t["urgency"], len(rank)), t["due_at"]),
        )
        by_urgency = dict.fromkeys(config.label_ids("urgency"), 0)
        by_status = dict.fromkeys(OPEN_STATUSES, 0)
        for f in open_facts:
            by_urgency[f.urgency] = by_urgency.get(f.urgency, 0) + 1
            by_status[f.status] += 1
        return {
            "now": now,
            "timezone": str(tz),
            "since": start,
            "until": end,
            "model": triager.model_info,
            "received": received,
            "needs_review": needs_review,
            "abstain_rate": needs_review / received if received else None,
            "open_total": len(open_facts),
            "open_by_urgency": by_urgency,
            "open_by_status": by_status,
            "sla": status.counts,
            "overdue": sum(t[t["due_target"]] == "breached" for t in tickets),
            "due_soon": sum(t[t["due_target"]] == "due_soon" for t in tickets),
            "due_soon_minutes": due_soon_minutes,
            "tickets": tickets[:limit],
            "truncated": len(tickets) > limit,
        }

    return await run_in_threadpool(compute)


@router.get("/labels", response_model=LabelsOut, responses=ERRORS)
async def labels(config: ConfigDep, _: AgentDep) -> dict[str, Any]:
    """Chinese names of every label, in the taxonomy's order, and of the ticket statuses."""
    names = {head: [{"id": x.id, "name": x.name} for x in config.labels[head]] for head in HEADS}
    return names | {"status": [{"id": s, "name": n} for s, n in STATUS_NAMES.items()]}
