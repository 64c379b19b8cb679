"""Volume, SLA status, spike warnings and the monthly report over plain ticket facts (SPEC sections 7 and 8)."""

from __future__ import annotations

import bisect
import csv
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from serving.analytics import (
    Alert,
    AnalyticsError,
    SpikeRule,
    TicketFacts,
    alerts,
    monthly_report,
    sla_status,
    volume,
    write_monthly,
)
from triage.config import TriageConfig

SH = ZoneInfo("Asia/Shanghai")
CATEGORIES = ("credit_card", "deposit_account", "loan", "wealth", "payment", "e_banking", "general_service", "other")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: ZoneInfo = SH) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def fact(ticket_id: str = "T1", received_at: datetime | None = None, **overrides: Any) -> TicketFacts:
    received = received_at or local(2026, 11, 23, 9, 0)
    values: dict[str, Any] = {
        "ticket_id": ticket_id,
        "received_at": received,
        "category": "credit_card",
        "issue": "pricing_fees",
        "urgency": "P3",
        "sentiment": "negative",
        "department": "信用卡中心",
        "source": "app",
        "status": "new",
        "first_response_by": received + timedelta(hours=4),
        "resolve_by": received + timedelta(days=7),
        "first_response_at": None,
        "resolved_at": None,
        "needs_review": False,
    }
    values.update(overrides)
    return TicketFacts(**values)


# Ticket facts


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"received_at": datetime(2026, 11, 23, 9, 0)}, "received_at must carry a time zone"),
        ({"resolved_at": datetime(2026, 11, 23, 9, 0)}, "resolved_at must carry a time zone"),
        ({"status": "closed"}, "unknown status"),
        ({"status": "resolved"}, "resolved without resolved_at"),
    ],
)
def test_facts_refuse_inconsistent_records(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(AnalyticsError, match=message):
        fact(**overrides)


# Volume


def test_volume_zero_fills_every_day_and_key() -> None:
    facts = [
        fact("A", local(2026, 11, 20, 8, 0)),
        fact("B", local(2026, 11, 20, 23, 59)),
        fact("C", local(2026, 11, 22, 12, 0), category="loan"),
    ]
    rows = volume(facts, "category", "day", SH, local(2026, 11, 20), local(2026, 11, 24), keys=("credit_card", "loan"))
    assert [(r.bucket_start, r.key, r.count) for r in rows] == [
        (local(2026, 11, 20), "credit_card", 2),
        (local(2026, 11, 20), "loan", 0),
        (local(2026, 11, 21), "credit_card", 0),
        (local(2026, 11, 21), "loan", 0),
        (local(2026, 11, 22), "credit_card", 0),
        (local(2026, 11, 22), "loan", 1),
        (local(2026, 11, 23), "credit_card", 0),
        (local(2026, 11, 23), "loan", 0),
    ]


def test_hour_buckets_cross_local_midnight_in_shanghai() -> None:
    facts = [
        fact("A", local(2026, 11, 22, 23, 10)),
        fact("B", local(2026, 11, 22, 23, 50)),
        fact("C", local(2026, 11, 23, 0, 5)),
    ]
    rows = volume(facts, "urgency", "hour", SH, local(2026, 11, 22, 22, 0), local(2026, 11, 23, 1, 0))
    assert [(r.bucket_start, r.key, r.count) for r in rows] == [
        (local(2026, 11, 22, 22), "P3", 0),
        (local(2026, 11, 22, 23), "P3", 2),
        (local(2026, 11, 23, 0), "P3", 1),
    ]
    assert all(r.bucket_start.tzinfo == SH for r in rows)


def test_day_buckets_follow_the_local_calendar_not_utc() -> None:
    # All three fall on 22 November in UTC; in Shanghai the last one is already the 23rd.
    facts = [
        fact("A", local(2026, 11, 22, 23, 10)),
        fact("B", local(2026, 11, 22, 23, 50)),
        fact("C", local(2026, 11, 23, 0, 5)),
    ]
    since, until = datetime(2026, 11, 22, 14, 0, tzinfo=UTC), datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
    rows = volume(facts, "department", "day", SH, since, until)
    assert [(r.bucket_start, r.key, r.count) for r in rows] == [
        (local(2026, 11, 22), "信用卡中心", 2),
        (local(2026, 11, 23), "信用卡中心", 1),
    ]


def test_volume_range_is_half_open() -> None:
    facts = [
        fact("A", local(2026, 11, 20)),
        fact("B", local(2026, 11, 21)),
        fact("C", local(2026, 11, 20, 12), issue="marketing"),
    ]
    rows = volume(facts, "issue", "day", SH, local(2026, 11, 20), local(2026, 11, 21))
    assert [(r.key, r.count) for r in rows] == [("marketing", 1), ("pricing_fees", 1)]


def test_hour_buckets_count_the_repeated_hour_twice_when_clocks_go_back() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    first_two = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 summer time
    second_two = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 winter time
    rows = volume(
        [fact("A", first_two), fact("B", second_two), fact("C", second_two)],
        "category",
        "hour",
        berlin,
        local(2026, 10, 25, tz=berlin),
        local(2026, 10, 26, tz=berlin),
    )
    assert len(rows) == 25
    assert [r.count for r in rows if r.count] == [1, 2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "sentiment"}, "unknown volume key"),
        ({"bucket": "week"}, "unknown bucket"),
        ({"since": datetime(2026, 11, 20)}, "since must carry a time zone"),
        ({"until": local(2026, 11, 19)}, "until must be later than since"),
        ({"bucket": "hour", "until": local(2028, 6, 1)}, "at most 10000 hour buckets"),
    ],
)
def test_volume_refuses_bad_queries(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "by": "category",
        "bucket": "day",
        "tz": SH,
        "since": local(2026, 11, 20),
        "until": local(2026, 11, 24),
    }
    with pytest.raises(AnalyticsError, match=message):
        volume([], **(args | kwargs))


# Service levels

DEADLINE = local(2026, 11, 23, 9, 30)
SOON = timedelta(minutes=30)


@pytest.mark.parametrize(
    ("now", "responded", "state"),
    [
        (DEADLINE - timedelta(minutes=31), None, "on_track"),
        (DEADLINE - SOON, None, "due_soon"),
        (DEADLINE, None, "due_soon"),
        (DEADLINE + timedelta(microseconds=1), None, "breached"),
        (DEADLINE + timedelta(days=3), DEADLINE, "met"),
        (DEADLINE + timedelta(days=3), DEADLINE + timedelta(seconds=1), "breached"),
        # a reply recorded after `now` had not happened yet at `now`
        (DEADLINE - timedelta(hours=2), DEADLINE - timedelta(hours=1), "on_track"),
    ],
)
def test_first_response_state_at_the_boundaries(now: datetime, responded: datetime | None, state: str) -> None:
    ticket = fact(first_response_by=DEADLINE, first_response_at=responded, status="replied" if responded else "new")
    assert sla_status([ticket], now, SOON).tickets[0].first_response == state


def test_resolving_counts_as_the_first_response() -> None:
    ticket = fact(first_response_by=DEADLINE, status="resolved", resolved_at=DEADLINE - timedelta(minutes=5))
    result = sla_status([ticket], DEADLINE + timedelta(days=1), SOON).tickets[0]
    assert (result.first_response, result.resolution) == ("met", "met")


def test_sla_counts_cover_every_state() -> None:
    now = local(2026, 11, 23, 12, 0)
    tickets = [
        fact("A", first_response_by=now + timedelta(hours=3), resolve_by=now + timedelta(days=2)),
        fact("B", first_response_by=now + timedelta(minutes=10), resolve_by=now + timedelta(minutes=20)),
        fact("C", first_response_by=now - timedelta(hours=1), resolve_by=now - timedelta(minutes=1)),
        fact("D", first_response_by=now, first_response_at=now - timedelta(hours=2), status="replied"),
    ]
    result = sla_status(tickets, now, SOON)
    assert [(t.ticket_id, t.first_response, t.resolution) for t in result.tickets] == [
        ("A", "on_track", "on_track"),
        ("B", "due_soon", "due_soon"),
        ("C", "breached", "breached"),
        ("D", "met", "on_track"),
    ]
    assert result.counts == {
        "first_response": {"on_track": 1, "due_soon": 1, "breached": 1, "met": 1},
        "resolution": {"on_track": 2, "due_soon": 1, "breached": 1, "met": 0},
    }


# Spike warnings


def daily_facts(counts: np.ndarray, start: datetime, seed: int) -> list[TicketFacts]:
    """counts[day, k] tickets of CATEGORIES[k], at random times within each local day from `start`."""
    rng = np.random.default_rng(seed)
    facts: list[TicketFacts] = []
    for day, row in enumerate(counts):
        for k, n in enumerate(row):
            for second in rng.integers(0, 86_400, size=n):
                facts.append(
                    fact(
                        f"{day}-{k}-{len(facts)}",
                        start + timedelta(days=day, seconds=int(second)),
                        category=CATEGORIES[k],
                    )
                )
    return sorted(facts, key=lambda f: f.received_at)


def recent(facts: Sequence[TicketFacts], now: datetime, days: int = 15) -> list[TicketFacts]:
    """What the store would hand over: the window and its baseline days (facts sorted by time)."""
    times = [f.received_at for f in facts]
    return list(facts[bisect.bisect_left(times, now - timedelta(days=days)) : bisect.bisect_left(times, now)])


START = local(2026, 9, 1)


def test_alert_fields_are_the_interface_names() -> None:
    assert [f.name for f in dataclasses.fields(Alert)] == [
        "category",
        "window",
        "observed",
        "expected",
        "score",
        "since",
    ]


def test_planted_spike_raises_one_alert() -> None:
    rng = np.random.default_rng(0)
    counts = rng.poisson(20, size=(15, 8))
    counts[14, 2] = 3 * 20  # the 15th day: three times the usual loan complaints
    facts = daily_facts(counts, START, seed=1)
    now = START + timedelta(days=15)
    found = alerts(facts, now, SH, categories=CATEGORIES, history_start=START)
    assert [(a.category, a.window, a.observed, a.since) for a in found] == [
        ("loan", "24h", 60, START + timedelta(days=14))
    ]
    assert found[0].expected == pytest.approx(counts[:14, 2].mean())
    # 60 against a mean of 18.9 (baseline variance 15.3): p = 10^-7.5, far beyond the 10^-3.9 threshold.
    assert found[0].score == pytest.approx(7.54, abs=0.01)


@pytest.mark.parametrize(("mean", "at_least"), [(20, 40), (50, 50)])
def test_a_tripled_day_is_caught_in_most_seeded_runs(mean: int, at_least: int) -> None:
    # The price of estimating the variance from 14 days: at 20 a day, a baseline that happens to be
    # noisy hides a tripled day about one time in nine (see the module docstring).
    caught = 0
    for seed in range(50):
        counts = np.zeros((15, 8), dtype=np.int64)
        counts[:14, 0] = np.random.default_rng(seed).poisson(mean, size=14)
        counts[14, 0] = 3 * mean
        found = alerts(
            daily_facts(counts, START, seed), START + timedelta(days=15), SH, categories=CATEGORIES, history_start=START
        )
        caught += [a.category for a in found] == ["credit_card"]
    assert caught >= at_least


@pytest.mark.parametrize("kind", ["poisson", "negative_binomial"])
def test_quiet_data_raises_no_alert_on_any_day(kind: str) -> None:
    means = np.array([3, 8, 15, 20, 30, 50, 80, 150])
    rng = np.random.default_rng(7)
    if kind == "poisson":
        counts = rng.poisson(means, size=(60, 8))
    else:  # overdispersed: each day's rate drawn from a gamma with shape 10 (variance mean + mean²/10)
        counts = rng.poisson(rng.gamma(10.0, means / 10.0, size=(60, 8)))
    facts = daily_facts(counts, START, seed=2)
    raised = []
    for day in range(14, 60):
        now = START + timedelta(days=day, hours=9)
        raised += alerts(recent(facts, now), now, SH, categories=CATEGORIES, history_start=START)
    assert raised == []


def test_large_steady_category_raises_no_alert() -> None:
    rng = np.random.default_rng(11)
    counts = np.zeros((30, 8), dtype=np.int64)
    counts[:, 0] = rng.poisson(1500, size=30)
    counts[:, 1] = rng.poisson(5, size=30)
    facts = daily_facts(counts, START, seed=3)
    for day in range(14, 30, 3):
        now = START + timedelta(days=day, hours=17)
        assert alerts(recent(facts, now), now, SH, categories=CATEGORIES, history_start=START) == []


@pytest.mark.parametrize(("observed", "raised"), [(4, False), (12, True)])
def test_a_silent_category_needs_a_real_burst(observed: int, raised: bool) -> None:
    counts = np.zeros((15, 8), dtype=np.int64)
    counts[:, 0] = 20
    counts[14, 3] = observed  # wealth: nothing for two weeks
    found = alerts(daily_facts(counts, START, seed=4), START + timedelta(days=15), SH, categories=CATEGORIES)
    assert [a.category for a in found] == (["wealth"] if raised else [])
    assert all(np.isfinite(a.score) for a in found)


def test_hourly_window_is_compared_with_the_same_hour_of_earlier_days() -> None:
    # Office-hours traffic only: 10 tickets between 09:00 and 10:00 every day, none at night.
    facts = [
        fact(f"{day}-{i}", START + timedelta(days=day, hours=9, minutes=5 * i), category="e_banking")
        for day in range(15)
        for i in range(10)
    ]
    now = START + timedelta(days=14, hours=10)
    assert alerts(facts, now, SH, window=timedelta(hours=1)) == []
    burst = [fact(f"x{i}", now - timedelta(minutes=30, seconds=i), category="e_banking") for i in range(30)]
    found = alerts(facts + burst, now, SH, window=timedelta(hours=1))
    assert [(a.category, a.window, a.observed, a.expected) for a in found] == [("e_banking", "1h", 40, 10.0)]


def test_today_window_starts_at_local_midnight() -> None:
    counts = np.full((14, 8), 24, dtype=np.int64)
    facts = daily_facts(counts, START, seed=5)
    now = START + timedelta(days=14, hours=10)
    morning = [fact(f"m{i}", now - timedelta(minutes=10 * i + 1), category="payment") for i in range(40)]
    found = alerts(facts + morning, now, SH, window="today")
    assert [(a.category, a.window, a.observed, a.since) for a in found] == [
        ("payment", "today", 40, START + timedelta(days=14))
    ]
    assert found[0].expected == pytest.approx(10, abs=3)  # about 24 * 10/24 before 10:00 on earlier days


def test_no_alert_before_enough_history() -> None:
    counts = np.full((4, 8), 20, dtype=np.int64)
    counts[3, 0] = 200
    facts = daily_facts(counts, START, seed=6)
    assert alerts(facts, START + timedelta(days=4), SH) == []
    # By default the history starts with the first ticket, a little after midnight of day 0:
    # with 9 days of data, days 1 to 7 are the 7 complete baseline days.
    longer = np.full((9, 8), 20, dtype=np.int64)
    longer[8, 0] = 200
    found = alerts(daily_facts(longer, START, seed=6), START + timedelta(days=9), SH)
    assert [a.category for a in found] == ["credit_card"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": timedelta(days=2)}, "at most one day"),
        ({"window": timedelta(0)}, "positive duration"),
        ({"baseline_days": 1}, "two days"),
        ({"rule": SpikeRule(min_baseline_days=20)}, "baseline_days >= min_baseline_days"),
    ],
)
def test_alerts_refuse_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(AnalyticsError, match=message):
        alerts([], local(2026, 11, 23), SH, **kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"alpha": 0.0}, {"alpha": 1.0}, {"min_excess": -1}, {"min_ratio": 0.5}, {"rate_floor": 0.0}]
)
def test_spike_rule_refuses_meaningless_thresholds(kwargs: dict[str, Any]) -> None:
    with pytest.raises(AnalyticsError):
        SpikeRule(**kwargs)


# Monthly report

AS_OF = local(2026, 12, 2, 9, 0)


def november() -> list[TicketFacts]:
    t1 = local(2026, 11, 1, 0, 0)
    t3 = local(2026, 10, 31, 23, 30)
    t4 = local(2026, 11, 10, 10, 0)
    t5 = local(2026, 11, 28, 9, 0)
    return [
        fact("T1", t1, category="credit_card", issue="funds_security", urgency="P1", department="反欺诈中心",
             first_response_by=t1 + timedelta(minutes=15), first_response_at=t1 + timedelta(minutes=10),
             resolve_by=t1 + timedelta(days=1), resolved_at=t1 + timedelta(hours=20), status="resolved"),
        fact("T2", local(2026, 11, 30, 23, 59), category="credit_card", issue="pricing_fees", urgency="P3"),
        fact("T3", t3, category="loan", issue="debt_collection", urgency="P2", department="催收管理部",
             first_response_by=t3 + timedelta(hours=1), first_response_at=t3 + timedelta(hours=1, minutes=30),
             resolve_by=t3 + timedelta(days=3), resolved_at=t3 + timedelta(days=2), status="resolved"),
        fact("T4", t4, category="e_banking", issue="operations", urgency="P3", department="网络金融部",
             first_response_by=t4 + timedelta(hours=4), first_response_at=t4 + timedelta(hours=3),
             resolve_by=t4 + timedelta(days=7), status="replied"),
        fact("T5", t5, category="loan", issue="debt_collection", urgency="P4", department="催收管理部",
             first_response_by=t5 + timedelta(days=1), resolve_by=t5 + timedelta(days=15), needs_review=True),
        fact("T6", local(2026, 12, 1, 0, 0), category="wealth", issue="marketing"),
    ]  # fmt: skip


def test_monthly_counts_checked_by_hand(config: TriageConfig) -> None:
    report = monthly_report(november(), 2026, 11, SH, config, as_of=AS_OF)
    # T1, T2, T4, T5 were received in November (local time); T3 in October and T6 in December.
    assert (report.total, report.needs_review) == (4, 1)
    assert report.by_category == {
        "credit_card": 2, "deposit_account": 0, "loan": 1, "wealth": 0,
        "payment": 0, "e_banking": 1, "general_service": 0, "other": 0,
    }  # fmt: skip
    assert {(c, i): n for c, row in report.cross.items() for i, n in row.items() if n} == {
        ("credit_card", "funds_security"): 1,
        ("credit_card", "pricing_fees"): 1,
        ("loan", "debt_collection"): 1,
        ("e_banking", "operations"): 1,
    }
    assert sum(report.by_issue.values()) == 4 and report.by_issue["debt_collection"] == 1
    assert report.by_urgency == {"P1": 1, "P2": 0, "P3": 2, "P4": 1}
    assert report.by_department == {"催收管理部": 1, "信用卡中心": 1, "反欺诈中心": 1, "网络金融部": 1}
    # First responses due in November: T1 met, T3 late (due 1 Nov 00:30), T4 met, T5 never answered.
    # T2's first response is due on 1 December and belongs to next month's report.
    fr = report.first_response
    assert (fr.due, fr.met, fr.breached, fr.pending, fr.rate) == (4, 2, 2, 0, 0.5)
    # Resolutions due in November: T1 and T3 met, T4 not resolved by 17 November.
    res = report.resolution
    assert (res.due, res.met, res.breached, res.pending) == (3, 2, 1, 0)
    assert res.rate == pytest.approx(2 / 3)


def test_deadlines_not_yet_reached_are_pending(config: TriageConfig) -> None:
    report = monthly_report(november(), 2026, 11, SH, config, as_of=local(2026, 11, 28, 12, 0))
    fr = report.first_response
    assert (fr.met, fr.breached, fr.pending) == (2, 1, 1)  # T5 is due on the 29th


def test_report_takes_a_plain_name_mapping_and_keeps_unknown_labels() -> None:
    facts = [fact("A", local(2026, 11, 5), category="credit_card"), fact("B", local(2026, 11, 6), category="crypto")]
    report = monthly_report(facts, 2026, 11, SH, {"category": {"credit_card": "信用卡"}}, as_of=AS_OF)
    assert report.order["category"] == ("credit_card", "crypto")
    assert (report.name("category", "credit_card"), report.name("category", "crypto")) == ("信用卡", "crypto")


def test_month_must_exist(config: TriageConfig) -> None:
    with pytest.raises(AnalyticsError, match=r"month must be 1\.\.12"):
        monthly_report([], 2026, 13, SH, config)


def test_december_report_ends_at_new_year(config: TriageConfig) -> None:
    report = monthly_report([fact("A", local(2026, 12, 31, 23, 59))], 2026, 12, SH, config, as_of=AS_OF)
    assert (report.start, report.end, report.total) == (local(2026, 12, 1), local(2027, 1, 1), 1)


def test_written_report_opens_in_excel_and_reads_in_chinese(config: TriageConfig, tmp_path: Path) -> None:
    report = monthly_report(november(), 2026, 11, SH, config, as_of=AS_OF)
    csv_path, md_path = write_monthly(report, tmp_path / "reports")
    assert (csv_path.name, md_path.name) == ("complaints-2026-11.csv", "complaints-2026-11.md")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    index = {(r["section"], r["key"], r["key2"]): r for r in rows}
    assert index[("total", "", "")]["value"] == "4"
    cell = index[("category_issue", "credit_card", "funds_security")]
    assert (cell["name"], cell["name2"], cell["value"]) == ("信用卡", "资金安全", "1")
    assert index[("urgency", "P1", "")]["name"] == "紧急"
    assert index[("sla_first_response", "rate", "")]["value"] == "0.5000"
    assert index[("sla_resolution", "breached", "")]["value"] == "1"
    assert len([r for r in rows if r["section"] == "category_issue"]) == 8 * 10
    text = md_path.read_text(encoding="utf-8")
    assert "# 投诉统计月报 2026年11月" in text
    for name in ("信用卡", "借记卡与账户", "资金安全", "债务催收", "紧急", "首次响应", "催收管理部"):
        assert name in text
    assert "| 信用卡 | 0 | 0 | 1 | 0 | 1 | 0 | 0 | 0 | 0 | 0 | 2 |" in text
    assert "| 首次响应 | 4 | 2 | 2 | 0 | 50.0% |" in text
