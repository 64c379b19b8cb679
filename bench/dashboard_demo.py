"""A screenshot of /dashboard over a realistic history (docs/dashboard.png).

The 850 test-split complaints (datasets/complaints/w6, written by people who wrote
no training text) are triaged by a real bundle and stored as tickets received
over the last 14 days, mostly in business hours. Today one category gets at
least three times its usual volume (re-used texts of that category, as in an
outage), as many as the service's own spike rule needs to flag it. A small
team works the tickets through their statuses, most on time, some late, a few
left open past their deadlines. The service then runs in-process over that
store and headless Chromium photographs the page.

    .venv/bin/python -m bench.dashboard_demo [--bundle DIR] [--out docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import httpx
import numpy as np

from serving import analytics
from serving.analytics import TicketFacts
from serving.app import create_app
from serving.auth import KeyRing, parse_env_keys
from serving.routes.analytics import BASELINE_DAYS
from serving.store import open_store
from serving.store import tickets as ticket_module
from serving.store.tickets import NewTicket, TicketFilter, TicketStore
from tests.serving.conftest import LiveServer
from tests.serving.test_dashboard import CHROMIUM, CHROMIUM_ARGS, log_in
from training.data import DATASETS, jsonl_files, read_jsonl
from triage import HEADS
from triage.config import TriageConfig
from triage.pipeline import Triager, TriageRequest
from triage.result import TriageResult
from triage.runtime import load_triager
from triage.settings import Settings

TEST_SPLIT = DATASETS / "complaints" / "w6"
FALLBACK_BUNDLE = Path("/tmp/fresh-data/bundles/default")  # where the 12-layer ensemble was built for this project
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "dashboard.png"
AGENT_KEY = "demo-agent-key"
DAYS = 14  # of history, today included; the dashboard is switched to its 14-day view to match
SPIKE_CATEGORY = "e_banking"
SPIKE_FACTOR = 3.0  # today's volume of the spiked category over its usual day, at least
MAX_SPIKE_FACTOR = 10.0
LEEWAY = timedelta(minutes=10)  # the alert must still hold when the page asks, minutes after seeding
SPIKE_HOURS = 5.0  # the spike's tickets arrive within the last hours before now
SEED = 20261123
BATCH = 32
WIDTH, HEIGHT = 1440, 900
AUTH = {"Authorization": f"Bearer {AGENT_KEY}"}

# Complaints per local hour, relative: the desk's day peaks mid-morning and mid-afternoon.
HOUR_WEIGHTS = (
    *(0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8),
    *(1.6, 2.6, 3.0, 2.9, 2.2, 2.4, 2.8, 2.9),
    *(2.7, 2.3, 1.6, 1.3, 1.2, 1.0, 0.7, 0.4),
)
WEEKEND_WEIGHT = 0.8
# The channel an acknowledgement goes back on, for each source a complaint came in through.
SOURCE_CHANNELS = {
    "app": "app",
    "chatbot": "chat",
    "email": "email",
    "web_form": "email",
    "social": "app",
    "hotline": "sms",
    "branch": "sms",
}
# Shares of tickets answered or resolved late, and per urgency left alone (the deadlines' red on the
# page): an urgent case is escalated until someone owns it, a routine one can sit in the queue.
LATE_REPLY, LATE_RESOLUTION = 0.12, 0.1
STALLED = {"P1": 0.01, "P2": 0.04, "P3": 0.08, "P4": 0.1}
NEVER_TAKEN = {"P1": 0.0, "P2": 0.01, "P3": 0.04, "P4": 0.06}
AGENTS = ("王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊", "赵敏")


class DemoError(ValueError):
    """The demo cannot run here: no bundle, no browser, no test split."""


@dataclass(frozen=True)
class Case:
    """A complaint as it arrives at the service."""

    key: str  # idempotency key: distinct even for a re-used text
    text: str
    source: str
    received_at: datetime

    @property
    def channel(self) -> str:
        return SOURCE_CHANNELS.get(self.source, "sms")


@dataclass(frozen=True)
class Step:
    """One change an agent makes to a ticket, at a simulated time."""

    at: datetime
    status: str
    assignee: str | None = None


# -- the history ------------------------------------------------------------------


def resolve_bundle(given: Path | None) -> Path:
    candidates = [given] if given is not None else [Settings.from_env().default_bundle_dir, FALLBACK_BUNDLE]
    for path in candidates:
        if path is not None and (path / "manifest.json").is_file():
            return path
    tried = ", ".join(str(p) for p in candidates if p is not None)
    raise DemoError(f"no model bundle at {tried}; build one with `triage build-default` or pass --bundle DIR")


def corpus_rows() -> list[dict[str, Any]]:
    rows = [r for r in read_jsonl(jsonl_files(TEST_SPLIT)) if r.get("split") == "test" and r.get("text")]
    if not rows:
        raise DemoError(f"no test-split complaints under {TEST_SPLIT}")
    return rows


def arrival_times(n: int, now: datetime, tz: ZoneInfo, rng: np.random.Generator) -> list[datetime]:
    """n times from local midnight DAYS - 1 days ago up to now, weighted by hour of day and weekday."""
    start = datetime.combine((now - timedelta(days=DAYS - 1)).date(), datetime.min.time(), tzinfo=tz)
    hour = timedelta(hours=1)
    slots = []
    weights = []
    slot = start.astimezone(UTC)
    while slot < now:
        local = slot.astimezone(tz)
        open_part = min((now - slot) / hour, 1.0)  # the current hour only up to now
        weights.append(HOUR_WEIGHTS[local.hour] * (WEEKEND_WEIGHT if local.weekday() >= 5 else 1.0) * open_part)
        slots.append((slot, open_part))
        slot += hour
    p = np.asarray(weights) / sum(weights)
    picked = rng.choice(len(slots), size=n, p=p)
    return [
        (slots[i][0] + hour * float(rng.uniform(0, slots[i][1]))).astimezone(tz).replace(microsecond=0) for i in picked
    ]


def accepted(triager: Triager, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the service would take (it answers 422 to a text that is empty once normalised)."""
    out = []
    for row in rows:
        try:
            triager.prepare(row["text"])
        except ValueError:
            continue
        out.append(row)
    return out


def history_cases(rows: Sequence[dict[str, Any]], now: datetime, tz: ZoneInfo, rng: np.random.Generator) -> list[Case]:
    times = arrival_times(len(rows), now, tz, rng)
    return [
        Case(f"demo-{r['id']}", str(r["text"]), str(r.get("source") or "web_form"), t)
        for r, t in zip(rows, times, strict=True)
    ]


def spike_cases(
    rows: Sequence[dict[str, Any]], category: str, extra: int, now: datetime, tz: ZoneInfo, rng: np.random.Generator
) -> list[Case]:
    """`extra` complaints of `category` in the last SPIKE_HOURS of today (the last minute, just after midnight)."""
    pool = [r for r in rows if r["category"] == category]
    if not pool:
        raise DemoError(f"no test-split complaint labelled {category!r} to plant a spike with")
    midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=tz)
    span = max(min(timedelta(hours=SPIKE_HOURS), now - midnight), timedelta(minutes=1))
    cases = []
    for i, j in enumerate(rng.choice(len(pool), size=extra, replace=extra > len(pool))):
        row = pool[int(j)]
        received = (now - span * float(rng.uniform(0.01, 1))).replace(microsecond=0)  # before now: in the window
        cases.append(Case(f"demo-spike-{i:03d}-{row['id']}", str(row["text"]), str(row["source"]), received))
    return cases


def facts_of(results: Sequence[TriageResult]) -> list[TicketFacts]:
    """What analytics will read of these cases once stored as new tickets."""
    return [
        TicketFacts(
            ticket_id=f"case-{i}",
            received_at=datetime.fromisoformat(r.received_at),
            category=r.category.label,
            issue=r.issue.label,
            urgency=r.urgency.label,
            sentiment=r.sentiment.label,
            department=r.route.department,
            source=None,
            status="new",
            first_response_by=r.sla.first_response_by,
            resolve_by=r.sla.resolve_by,
            first_response_at=None,
            resolved_at=None,
            needs_review=any(getattr(r, head).needs_review for head in HEADS),
        )
        for i, r in enumerate(results)
    ]


def spike_size(
    config: TriageConfig, history: Sequence[TriageResult], pool: Sequence[TriageResult], least: int, now: datetime
) -> int:
    """How many of `pool` (today's extra SPIKE_CATEGORY cases) the spike takes: at least `least`, and enough
    for the service's own spike rule to flag the category now and LEEWAY later, when the page asks. A
    category of a few cases a day is noisy, so the rule may want well over three times its usual day."""
    tz = config.deployment.timezone
    base, extra = facts_of(history), facts_of(pool)
    start = min(f.received_at for f in base)

    def flagged(n: int, at: datetime) -> bool:
        found = analytics.alerts(
            [*base, *extra[:n]],
            at,
            tz,
            baseline_days=BASELINE_DAYS,
            categories=config.label_ids("category"),
            history_start=start,
        )
        return any(a.category == SPIKE_CATEGORY for a in found)

    for n in range(least, len(pool) + 1):
        if flagged(n, now) and flagged(n, now + LEEWAY):
            return n
    raise DemoError(f"{len(pool)} more {SPIKE_CATEGORY} complaints today still raise no alert")


def triage_all(triager: Triager, cases: Sequence[Case]) -> list[TriageResult]:
    """Results in the order of `cases`; batched by length, so short texts are not padded to long ones."""
    order = sorted(range(len(cases)), key=lambda i: len(cases[i].text))
    results: dict[int, TriageResult] = {}
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        requests = [TriageRequest(cases[i].text, cases[i].channel, cases[i].received_at) for i in chunk]
        results.update(zip(chunk, triager.triage_batch(requests), strict=True))
    return [results[i] for i in range(len(cases))]


@contextmanager
def store_clock(moment: datetime) -> Iterator[None]:
    """The store stamps ticket numbers, creation and status changes with its own clock; a history
    seeded today needs them at the simulated times, so that clock reads `moment` meanwhile."""
    with mock.patch.object(ticket_module, "utcnow", lambda: moment.astimezone(UTC)):
        yield


def numbered(triager: Triager, result: TriageResult, ticket_id: str) -> dict[str, Any]:
    """The result once the store has numbered it (the acknowledgement quotes the number)."""
    return triager.with_ticket(result, ticket_id).to_dict()


def store_cases(
    store: TicketStore, triager: Triager, cases: Sequence[Case], results: Sequence[TriageResult]
) -> list[dict[str, Any]]:
    """Create the tickets in order of arrival, each a few seconds after it came in, numbered as the service does."""
    stored = []
    for case, result in sorted(zip(cases, results, strict=True), key=lambda pair: pair[0].received_at):
        new = NewTicket(result.to_dict(), case.channel, case.received_at, source=case.source, idempotency_key=case.key)
        with store_clock(case.received_at + timedelta(seconds=3)):
            ticket, created = store.create(new, "intake-demo", partial(numbered, triager, result))
        if not created:
            raise DemoError(f"idempotency key {case.key} was used twice")
        stored.append(ticket)
    return stored


# -- the team's work --------------------------------------------------------------


def work_plan(ticket: Mapping[str, Any], now: datetime, rng: np.random.Generator) -> list[Step]:
    """The changes an agent made to `ticket` before `now`: taken, answered and resolved, most within
    their deadlines and some late; a few tickets stall or are never picked up. Today's are not resolved yet."""
    received = datetime.fromisoformat(ticket["received_at"])
    respond_in = datetime.fromisoformat(ticket["sla"]["first_response_by"]) - received
    resolve_by = datetime.fromisoformat(ticket["sla"]["resolve_by"])
    taken = received + respond_in * float(rng.uniform(0.05, 0.4))
    late_reply = rng.random() < LATE_REPLY
    replied = received + respond_in * float(rng.uniform(1.1, 3.0) if late_reply else rng.uniform(0.45, 0.95))
    late_fix = rng.random() < LATE_RESOLUTION
    resolved = replied + (resolve_by - replied) * float(rng.uniform(1.02, 1.4) if late_fix else rng.uniform(0.1, 0.9))
    steps = [Step(taken, "in_progress", str(rng.choice(AGENTS))), Step(replied, "replied"), Step(resolved, "resolved")]
    stop, urgency = rng.random(), ticket["urgency"]["label"]
    if stop < NEVER_TAKEN[urgency]:
        steps = []
    elif stop < NEVER_TAKEN[urgency] + STALLED[urgency] or received.astimezone(now.tzinfo).date() == now.date():
        steps = steps[:-1]
    return [s for s in steps if s.at < now]  # what is not yet due leaves the ticket where it is


def work_tickets(
    store: TicketStore, tickets: Sequence[Mapping[str, Any]], now: datetime, rng: np.random.Generator
) -> None:
    for ticket in tickets:
        actor = "demo"
        for step in work_plan(ticket, now, rng):
            actor = step.assignee or actor  # whoever took the ticket moves it on
            with store_clock(step.at):
                store.update(ticket["ticket_id"], actor, status=step.status, assignee=step.assignee)


# -- the page ---------------------------------------------------------------------


def screenshot(url: str, key: str, out: Path) -> None:
    """Log in to /dashboard, switch to the 14-day view of the seeded history and photograph the whole page."""
    if not CHROMIUM.is_file():
        raise DemoError(f"no {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1, locale="zh-CN"
            )
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{url}/dashboard")
            page.evaluate("Chart.defaults.animation = false")  # a still picture: no bar caught half-grown
            log_in(page, key)
            page.wait_for_selector("#alerts li")
            page.click(f".segmented[data-param=days] button[data-value='{DAYS}']")
            page.wait_for_function(
                "days => document.querySelector('#kpi-received-note').textContent.startsWith(`近${days}天`)"
                " && Chart.getChart(document.querySelector('#volume-chart'))?.data.labels.length === days",
                arg=DAYS,
            )
            page.wait_for_selector("#tickets tr")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()
    if problems:
        raise DemoError(f"the page reported errors: {problems}")


# -- the run ----------------------------------------------------------------------


def run(bundle: Path, out: Path) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="triage-demo-") as data_dir:
        env = {"TRIAGE_DATA_DIR": data_dir, "TRIAGE_MODEL_DIR": str(bundle), "TRIAGE_API_KEYS": f"{AGENT_KEY}:agent"}
        settings = Settings.from_env(env)
        triager = load_triager(settings)
        tz = triager.config.deployment.timezone
        now = datetime.now(tz).replace(microsecond=0)
        timings["load_s"] = time.perf_counter() - clock

        clock = time.perf_counter()
        corpus = corpus_rows()
        rows = accepted(triager, corpus)
        history = history_cases(rows, now, tz, rng)
        history_results = triage_all(triager, history)
        today = now.date()
        usual = sum(
            r.category.label == SPIKE_CATEGORY and datetime.fromisoformat(r.received_at).date() < today
            for r in history_results
        ) / (DAYS - 1)
        pool = spike_cases(rows, SPIKE_CATEGORY, round((MAX_SPIKE_FACTOR - 1) * usual), now, tz, rng)
        pool_results = triage_all(triager, pool)
        n = spike_size(triager.config, history_results, pool_results, round((SPIKE_FACTOR - 1) * usual), now)
        spike, spike_results = pool[:n], pool_results[:n]
        timings["triage_s"] = time.perf_counter() - clock

        clock = time.perf_counter()
        store = open_store(settings, tz)
        try:
            tickets = store_cases(store, triager, [*history, *spike], [*history_results, *spike_results])
            work_tickets(store, tickets, now, rng)
            statuses = Counter(t.status for t in store.tickets(TicketFilter()))
            timings["store_s"] = time.perf_counter() - clock

            clock = time.perf_counter()
            app = create_app(settings, triager=triager, keys=KeyRing(parse_env_keys(settings.api_keys)), store=store)
            with LiveServer(app) as live, httpx.Client(base_url=live.url, headers=AUTH, timeout=30) as client:
                alerts = client.get("/v1/analytics/alerts").json()
                overview = client.get("/v1/analytics/overview", params={"days": DAYS}).json()
                screenshot(live.url, AGENT_KEY, out)
            timings["screenshot_s"] = time.perf_counter() - clock
        finally:
            store.engine.dispose()
    return {
        "model": triager.model_info,
        "now": now,
        "history": len(history),
        "skipped": len(corpus) - len(rows),
        "spike": len(spike),
        "usual_daily": usual,
        "statuses": dict(statuses),
        "alerts": alerts,
        "overview": overview,
        "timings": timings,
    }


def summary(report: Mapping[str, Any], out: Path) -> str:
    o = report["overview"]
    lines = [
        f"model {report['model']['name']} {report['model']['version']}, now {report['now']:%Y-%m-%d %H:%M %Z}",
        f"tickets seeded: {report['history']} test-split complaints over {DAYS} days"
        f" ({report['skipped']} refused as empty) + {report['spike']} {SPIKE_CATEGORY} today"
        f" (usual {report['usual_daily']:.1f} a day)",
        "statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(report["statuses"].items())),
        f"open {o['open_total']}, overdue {o['overdue']}, due soon {o['due_soon']}, "
        f"abstain rate {o['abstain_rate']:.1%} over {o['received']} received",
    ]
    lines += [
        f"alert shown: {a['category']} ({a['window']}) observed {a['observed']}, expected {a['expected']:.1f},"
        f" score {a['score']:.1f}"
        for a in report["alerts"]
    ] or ["alert shown: none"]
    lines.append("seconds: " + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in report["timings"].items()))
    lines.append(f"screenshot: {out}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bundle", type=Path, help="model bundle to serve (default: the default bundle)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"PNG to write (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        report = run(resolve_bundle(args.bundle), args.out)
    except DemoError as exc:
        sys.exit(f"dashboard_demo: {exc}")
    print(summary(report, args.out))


if __name__ == "__main__":
    main()
