"""Routing overrides and SLA deadlines (SPEC section 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from triage.config import TriageConfig
from triage.routing import route, sla


@pytest.mark.parametrize(
    ("category", "issue", "urgency", "signals", "department", "cc"),
    [
        ("credit_card", "pricing_fees", "P3", set(), "信用卡中心", []),
        ("deposit_account", "operations", "P3", set(), "运营管理部", []),
        ("payment", "operations", "P3", set(), "运营管理部", []),
        ("loan", "contract_terms", "P3", set(), "个人信贷部", []),
        ("wealth", "marketing", "P3", set(), "财富管理部", []),
        ("e_banking", "operations", "P3", set(), "网络金融部", []),
        ("general_service", "service_quality", "P3", set(), "网点管理部", []),
        ("other", "other", "P4", set(), "客户服务中心", []),
        # overrides put their department in front, the product department is copied
        ("credit_card", "funds_security", "P2", set(), "反欺诈中心", ["信用卡中心"]),
        ("credit_card", "credit_report", "P2", set(), "个人信贷部", ["信用卡中心"]),
        ("loan", "credit_report", "P2", set(), "个人信贷部", []),
        ("loan", "debt_collection", "P2", set(), "催收管理部", ["个人信贷部", "消费者权益保护部"]),
        # consumer protection is copied on regulator/media signals and on P1
        ("e_banking", "operations", "P2", {"regulator"}, "网络金融部", ["消费者权益保护部"]),
        ("wealth", "marketing", "P2", {"media"}, "财富管理部", ["消费者权益保护部"]),
        ("credit_card", "funds_security", "P1", set(), "反欺诈中心", ["信用卡中心", "消费者权益保护部"]),
        ("loan", "debt_collection", "P1", {"regulator"}, "催收管理部", ["个人信贷部", "消费者权益保护部"]),
    ],
)
def test_routing_table(
    category: str, issue: str, urgency: str, signals: set[str], department: str, cc: list[str], config: TriageConfig
) -> None:
    r = route(config, category, issue, urgency, signals, needs_review=False)
    assert (r.department, list(r.cc), r.queue) == (department, cc, "auto")


def test_review_sends_to_human_queue_and_keeps_the_department(config: TriageConfig) -> None:
    r = route(config, "wealth", "marketing", "P3", set(), needs_review=True)
    assert (r.department, r.queue) == ("财富管理部", "human_review")


SHANGHAI = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("received", "urgency", "first", "resolve"),
    [
        # P1 across midnight
        (
            datetime(2026, 11, 23, 23, 50, tzinfo=SHANGHAI),
            "P1",
            "2026-11-24T00:05:00+08:00",
            "2026-11-24T23:50:00+08:00",
        ),
        # P2 across a month end and a year end
        (
            datetime(2026, 11, 30, 23, 30, tzinfo=SHANGHAI),
            "P2",
            "2026-12-01T00:30:00+08:00",
            "2026-12-03T23:30:00+08:00",
        ),
        (
            datetime(2026, 12, 31, 22, 0, tzinfo=SHANGHAI),
            "P3",
            "2027-01-01T02:00:00+08:00",
            "2027-01-07T22:00:00+08:00",
        ),
        # P4 across February in a non-leap year
        (datetime(2027, 2, 20, 9, 0, tzinfo=SHANGHAI), "P4", "2027-02-21T09:00:00+08:00", "2027-03-07T09:00:00+08:00"),
        # received in UTC: deadlines come back in Shanghai time
        (datetime(2026, 11, 23, 16, 30, tzinfo=UTC), "P1", "2026-11-24T00:45:00+08:00", "2026-11-25T00:30:00+08:00"),
        # naive times are taken as local time
        (datetime(2026, 11, 23, 9, 0), "P3", "2026-11-23T13:00:00+08:00", "2026-11-30T09:00:00+08:00"),
    ],
)
def test_sla_deadlines(received: datetime, urgency: str, first: str, resolve: str, config: TriageConfig) -> None:
    s = sla(config, urgency, received)
    assert (s.first_response_by.isoformat(), s.resolve_by.isoformat()) == (first, resolve)


def test_no_target_exceeds_the_regulatory_cap(config: TriageConfig) -> None:
    for level in config.sla.values():
        assert level.resolve <= config.regulatory_cap
