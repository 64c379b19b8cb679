"""Analytics over real HTTP, on SQLite and PostgreSQL: volume counts of posted tickets, the spike
alert of a seeded history, the dashboard's overview, names, roles."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.app import create_app
from serving.auth import KeyRing, parse_env_keys
from serving.store import open_store
from serving.store.facts import first_received, load_facts, ticket_facts
from serving.store.tickets import NewTicket, TicketFilter, TicketStore
from tests.serving.conftest import KEYS, LiveServer, database, http, make_settings
from triage.pipeline import Triager, TriageRequest

FEES = "信用卡年费说好免的结果又扣了300元，要求退还"
FRAUD = "快捷支付早就解绑了还被扣款，还在扣，赶紧处理"
# One complaint of several lines of business, received every day of the seeded history.
DAILY = (
    "信用卡分期手续费比当时说的高很多，要求退还多收部分",
    "借记卡被非柜面限额了，工资都取不出来",
    "贷款明明按时还了征信上却显示逾期，要求更正",
    "理财经理说保本，结果亏了两成，当初没说有风险",
    "手机银行更新后一直闪退，登录不了",
    "客服热线打了二十次都没人接",
    "办理业务",  # too vague for the model: left for review
)
SPIKE = "信用卡年费乱收，之前说好免年费的，又扣了我300元"
BURST = 24
HISTORY_DAYS = 15


@dataclass(frozen=True)
class Seeded:
    store: TicketStore
    now: datetime
    results: list[dict[str, Any]]  # as stored, with their ticket numbers
    spiked: str  # the category the triager gives SPIKE
    daily: int  # tickets of that category on an ordinary day


def seed(store: TicketStore, triager: Triager, now: datetime) -> Seeded:
    """DAILY on each of the last HISTORY_DAYS days (today included) at spread hours, BURST copies of
    SPIKE in the last three hours and one P1 case; stored directly, so the times lie in the past."""
    requests = [
        TriageRequest(text, received_at=now - timedelta(days=day, hours=1 + 4 * i, minutes=7 * day))
        for day in range(HISTORY_DAYS)
        for i, text in enumerate(DAILY)
    ]
    requests += [TriageRequest(SPIKE, received_at=now - timedelta(minutes=5 + 7 * i)) for i in range(BURST)]
    requests.append(TriageRequest(FRAUD, received_at=now - timedelta(minutes=3)))  # P1: answer within the hour
    results = []
    for triaged in triager.triage_batch(requests):
        new = NewTicket(triaged.to_dict(), "sms", datetime.fromisoformat(triaged.received_at), source="web_form")
        results.append(store.create(new, "seed")[0])
    spiked = results[-2]["category"]["label"]
    daily = sum(r["category"]["label"] == spiked for r in results[: len(DAILY)])
    return Seeded(store, now, results, spiked, daily)


@contextmanager
def seeded_server(backend: str, triager: Triager, data_dir: Path) -> Iterator[tuple[LiveServer, Seeded]]:
    """A service of its own (the shared one holds other tests' tickets of today) over a seeded history."""
    tz = triager.config.deployment.timezone
    with database(backend, data_dir) as url:
        settings = make_settings(data_dir, url)
        store = open_store(settings, tz)
        seeded = seed(store, triager, datetime.now(tz))
        app = create_app(settings, triager=triager, keys=KeyRing(parse_env_keys(KEYS)), store=store)
        try:
            with LiveServer(app) as live:
                yield live, seeded
        finally:
            store.engine.dispose()


@pytest.fixture(scope="module")
def history(
    backend: str, tiny_triager: Triager, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Seeded]]:
    with seeded_server(backend, tiny_triager, tmp_path_factory.mktemp(f"analytics-{backend}")) as served:
        yield served


@pytest.fixture
def lead(history: tuple[LiveServer, Seeded]) -> Iterator[httpx.Client]:
    with http(history[0], "agent-key") as c:
        yield c


def a_quiet_day(backend: str, name: str) -> date:
    """A day of 2001 that no other test posts to (the shared store keeps every test's tickets)."""
    offset = int(hashlib.sha256(f"{backend}/{name}".encode()).hexdigest(), 16) % 300
    return date(2001, 1, 1) + timedelta(days=offset)


# Volume over the shared service


def post_at(client: httpx.Client, text: str, when: str) -> dict[str, Any]:
    r = client.post("/v1/triage", json={"text": text, "received_at": when})
    assert r.status_code == 200, r.text
    return r.json()


def test_volume_counts_posted_tickets_per_local_day(client: httpx.Client, agent: httpx.Client, backend: str) -> None:
    day = a_quiet_day(backend, "per-day")
    first, second = day.isoformat(), (day + timedelta(days=1)).isoformat()
    posted = [post_at(client, FEES, f"{first}T10:00:00+08:00") for _ in range(3)]
    posted.append(post_at(client, FRAUD, f"{first}T23:30:00+08:00"))
    # 16:30 UTC is 00:30 the next morning in Shanghai: a local day, not a UTC one.
    posted += [post_at(client, FRAUD, f"{first}T16:30:00Z"), post_at(client, FEES, f"{second}T09:00:00+08:00")]
    expected = [
        Counter(r["category"]["label"] for r in posted[:4]),
        Counter(r["category"]["label"] for r in posted[4:]),
    ]

    # A time without a zone is the deployment's local time.
    r = agent.get("/v1/analytics/volume", params={"since": f"{first}T00:00:00", "until": f"{day + timedelta(days=2)}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["by"], body["bucket"], body["timezone"]) == ("category", "day", "Asia/Shanghai")
    assert body["buckets"] == [f"{first}T00:00:00+08:00", f"{second}T00:00:00+08:00"]
    series = {s["key"]: s for s in body["series"]}
    assert list(series)[:8] == [
        "credit_card",
        "deposit_account",
        "loan",
        "wealth",
        "payment",
        "e_banking",
        "general_service",
        "other",
    ]
    assert series["credit_card"]["name"] == "信用卡"
    for key, s in series.items():
        assert s["counts"] == [expected[0][key], expected[1][key]]
        assert s["total"] == sum(s["counts"])
    assert body["total"] == len(posted)


def test_volume_by_hour_and_by_urgency(client: httpx.Client, agent: httpx.Client, backend: str) -> None:
    day = a_quiet_day(backend, "per-hour").isoformat()
    posted = [
        post_at(client, text, f"{day}T{hour:02d}:15:00+08:00") for text, hour in ((FEES, 9), (FEES, 9), (FRAUD, 14))
    ]
    body = agent.get(
        "/v1/analytics/volume", params={"by": "urgency", "bucket": "hour", "since": day, "until": f"{day}T18:00:00"}
    ).json()
    assert len(body["buckets"]) == 18 and body["buckets"][9] == f"{day}T09:00:00+08:00"
    assert [s["key"] for s in body["series"]] == ["P1", "P2", "P3", "P4"]
    counts = {s["key"]: s["counts"] for s in body["series"]}
    for result, hour in zip(posted, (9, 9, 14), strict=True):
        assert counts[result["urgency"]["label"]][hour] >= 1
    assert sum(c[9] for c in counts.values()) == 2 and sum(c[14] for c in counts.values()) == 1
    assert sum(map(sum, counts.values())) == 3


def test_volume_by_department_names_the_departments(agent: httpx.Client, backend: str) -> None:
    day = a_quiet_day(backend, "empty")
    body = agent.get("/v1/analytics/volume", params={"by": "department", "days": 3, "until": day.isoformat()}).json()
    assert body["buckets"][0] == f"{day - timedelta(days=3)}T00:00:00+08:00" and len(body["buckets"]) == 3
    assert body["total"] == 0 and body["series"]
    assert all(s["name"] == s["key"] and s["counts"] == [0] * len(body["buckets"]) for s in body["series"])


def test_volume_defaults_to_the_last_30_local_days(agent: httpx.Client) -> None:
    body = agent.get("/v1/analytics/volume").json()
    assert len(body["buckets"]) == 30 and body["buckets"][0].endswith("T00:00:00+08:00")
    assert datetime.fromisoformat(body["buckets"][-1]).date() == datetime.fromisoformat(body["until"]).date()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"by": "sentiment"}, "by"),
        ({"bucket": "week"}, "bucket"),
        ({"since": "2001-01-02", "until": "2001-01-01"}, "later than since"),
        ({"days": 0}, "days"),
        ({"bucket": "hour", "days": 366, "since": "1990-01-01"}, "buckets"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since must lie between 1970 and 2199"),
        ({"until": "9999-12-31T23:59:59"}, "until must lie between"),
    ],
)
def test_volume_refuses_bad_queries(agent: httpx.Client, params: dict[str, Any], message: str) -> None:
    r = agent.get("/v1/analytics/volume", params=params)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error" and message in r.json()["error"]["message"]


@pytest.mark.parametrize("path", ["volume", "alerts", "overview", "labels"])
def test_analytics_need_an_agent_key(server: LiveServer, path: str) -> None:
    with http(server, "intake-key") as intake:
        r = intake.get(f"/v1/analytics/{path}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = httpx.get(f"{server.url}/v1/analytics/{path}")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    with http(server, "admin-key") as admin:
        assert admin.get(f"/v1/analytics/{path}").status_code == 200


# Alerts and the overview over a seeded history


def test_alerts_name_the_planted_spike(lead: httpx.Client, history: tuple[LiveServer, Seeded]) -> None:
    seeded = history[1]
    r = lead.get("/v1/analytics/alerts")
    assert r.status_code == 200, r.text
    (alert,) = r.json()
    assert set(alert) == {"category", "window", "observed", "expected", "score", "since"}
    assert alert["category"] == seeded.spiked and alert["window"] == "24h"
    assert alert["observed"] == seeded.daily + BURST
    assert alert["expected"] == pytest.approx(seeded.daily)
    assert alert["score"] > 3.9
    since = datetime.fromisoformat(alert["since"])
    assert since.utcoffset() == timedelta(hours=8)
    assert abs(since - (seeded.now - timedelta(days=1))) < timedelta(minutes=5)


def test_alert_window_today_and_hours(lead: httpx.Client, history: tuple[LiveServer, Seeded]) -> None:
    seeded = history[1]
    today = lead.get("/v1/analytics/alerts", params={"window": "today"}).json()
    midnight = datetime.combine(seeded.now.date(), time(), tzinfo=seeded.now.tzinfo)
    if seeded.now - midnight > timedelta(hours=3):  # the whole burst fell after local midnight
        assert [(a["category"], a["window"]) for a in today] == [(seeded.spiked, "today")]
    (hourly,) = lead.get("/v1/analytics/alerts", params={"window": "3h"}).json()
    assert hourly["window"] == "3h" and hourly["observed"] >= BURST
    for bad in ("25h", "0h", "week"):
        assert lead.get("/v1/analytics/alerts", params={"window": bad}).status_code == 422


def test_overview_lists_open_tickets_most_urgent_first(
    lead: httpx.Client, history: tuple[LiveServer, Seeded], tiny_triager: Triager
) -> None:
    seeded = history[1]
    # The oldest seeded ticket is up to 15.1 days old, so run after local midnight it falls on the
    # 17th local day back: the window spans HISTORY_DAYS + 2 days, today included.
    body = lead.get("/v1/analytics/overview", params={"days": HISTORY_DAYS + 2}).json()
    assert body["model"] == tiny_triager.model_info
    total = len(seeded.results)
    assert body["open_total"] == total and not body["truncated"] and len(body["tickets"]) == total
    assert body["open_by_urgency"] == dict(Counter(r["urgency"]["label"] for r in seeded.results)) | {
        u: 0 for u in ("P1", "P2", "P3", "P4") if u not in {r["urgency"]["label"] for r in seeded.results}
    }
    assert body["open_by_status"] == {"new": total, "in_progress": 0, "replied": 0}
    ranks = [("P1", "P2", "P3", "P4").index(t["urgency"]) for t in body["tickets"]]
    assert ranks == sorted(ranks)
    # Two weeks old and never answered: past both deadlines.
    oldest = min(body["tickets"], key=lambda t: t["received_at"])
    assert (oldest["first_response"], oldest["resolution"], oldest["due_target"]) == (
        "breached",
        "breached",
        "first_response",
    )
    assert oldest["due_at"] == oldest["first_response_by"]
    assert body["overdue"] >= 1 and sum(body["sla"]["first_response"].values()) == total
    # Every seeded ticket lies in the window; the abstain rate is the share the model left for review.
    review = sum(
        any(r[h]["needs_review"] for h in ("category", "issue", "urgency", "sentiment")) for r in seeded.results
    )
    assert (body["received"], body["needs_review"]) == (total, review)
    assert review >= HISTORY_DAYS and body["abstain_rate"] == pytest.approx(review / total)


def test_overview_limit_and_an_empty_window(lead: httpx.Client) -> None:
    body = lead.get("/v1/analytics/overview", params={"limit": 3, "since": "2001-01-01", "until": "2001-01-02"}).json()
    assert len(body["tickets"]) == 3 and body["truncated"]
    assert (body["received"], body["abstain_rate"]) == (0, None)


def test_labels_give_the_chinese_names(lead: httpx.Client) -> None:
    body = lead.get("/v1/analytics/labels").json()
    assert {"id": "credit_card", "name": "信用卡"} in body["category"]
    assert [x["id"] for x in body["urgency"]] == ["P1", "P2", "P3", "P4"]
    assert body["status"][0] == {"id": "new", "name": "待处理"}


def test_facts_read_from_the_columns_equal_the_full_rows(history: tuple[LiveServer, Seeded]) -> None:
    seeded = history[1]
    store = seeded.store
    assert load_facts(store) == [ticket_facts(t) for t in store.tickets(TicketFilter())]
    start = first_received(store)
    assert start is not None and start.utcoffset() == timedelta(0)
    assert start == min(datetime.fromisoformat(r["received_at"]) for r in seeded.results)
    assert len(load_facts(store, since=seeded.now - timedelta(hours=4))) >= BURST
