"""Acknowledgement drafts for every reply channel and urgency (SPEC section 4)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from triage.ack import DraftInput, check_draft, contact_phrase, draft, format_yuan
from triage.config import CHANNELS, URGENCIES, TriageConfig
from triage.errors import TriageError

CST = timezone(timedelta(hours=8))
RECEIVED = datetime(2026, 11, 23, 9, 15, tzinfo=CST)
SENTIMENTS = ("angry", "negative", "neutral", "positive")


def make(channel: str, urgency: str, sentiment: str = "negative", **kw: object) -> DraftInput:
    values: dict[str, object] = {
        "channel": channel,
        "category": "credit_card",
        "issue": "funds_security",
        "urgency": urgency,
        "sentiment": sentiment,
        "amounts": (12000.0,),
        "fraud": False,
        "ticket_id": "TS20261123-000042",
        "contact_by": RECEIVED + timedelta(minutes=15),
        "received_at": RECEIVED,
    } | kw
    return DraftInput(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("urgency", URGENCIES)
@pytest.mark.parametrize("sentiment", SENTIMENTS)
def test_every_channel_and_urgency_gives_a_clean_draft(
    channel: str, urgency: str, sentiment: str, config: TriageConfig
) -> None:
    text = draft(config, make(channel, urgency, sentiment, fraud=urgency == "P1"))
    assert check_draft(text, channel, config) == []
    assert "TS20261123-000042" in text
    assert "今天09:30" in text
    assert not re.search(r"\{[^}]*\}", text)
    assert len(text) <= config.templates.limits[channel]
    if channel == "sms":
        assert text.startswith(config.deployment.sms_signature) and len(text) <= 70
    if urgency == "P1":
        assert config.deployment.hotline in text  # fraud: freeze the card via the hotline now


def test_restatement_shrinks_before_the_sms_limit(config: TriageConfig) -> None:
    full = draft(config, make("app", "P3"))
    assert "信用卡资金安全问题" in full and "1.2万元" in full
    sms = draft(config, make("sms", "P1", "angry", fraud=True))
    assert len(sms) <= 70 and "信用卡" in sms


def test_email_is_a_full_letter(config: TriageConfig) -> None:
    text = draft(config, make("email", "P3"))
    assert text.startswith("尊敬的客户") and config.deployment.bank_name in text and "此致" in text


def test_promises_contact_not_outcomes(config: TriageConfig) -> None:
    for channel in CHANNELS:
        for urgency in URGENCIES:
            text = draft(config, make(channel, urgency))
            assert "联系" in text or "致电" in text or "回电" in text or "回复" in text or "答复" in text
            for phrase in ("解决", "退款", "赔偿"):
                assert phrase not in text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("我们保证解决您的问题，工单TS1", "banned phrase"),
        ("我们将全额退款", "banned phrase"),
        ("已转信用卡中心处理", "internal department name"),
        ("您的credit_card问题", "internal label id"),
        ("您好{restatement}", "unfilled placeholder"),
        ("长" * 71, "over the sms limit"),
    ],
)
def test_checks_catch_bad_drafts(text: str, problem: str, config: TriageConfig) -> None:
    assert any(problem in p for p in check_draft(text, "sms", config))


def test_tone_follows_urgency_and_sentiment(config: TriageConfig) -> None:
    urgent = draft(config, make("chat", "P1", "angry"))
    praise = draft(config, make("chat", "P4", "positive", issue="other", amounts=()))
    assert "最紧急" in urgent and "回电" in urgent
    assert "谢谢" in praise or "感谢" in praise


def test_contact_phrase() -> None:
    assert contact_phrase(RECEIVED + timedelta(hours=2), RECEIVED) == "今天11:15"
    assert contact_phrase(RECEIVED + timedelta(days=1), RECEIVED) == "明天09:15"
    assert contact_phrase(RECEIVED + timedelta(days=9), RECEIVED) == "12月2日09:15"


def test_format_yuan() -> None:
    assert (format_yuan(12000), format_yuan(3500), format_yuan(8000.5)) == ("1.2万元", "3500元", "8000.5元")


def test_unknown_channel_is_refused(config: TriageConfig) -> None:
    with pytest.raises(TriageError):
        draft(config, make("fax", "P3"))
