"""Risk signals and their effect on urgency (SPEC section 2)."""

from __future__ import annotations

from datetime import date

import pytest

from triage.config import TriageConfig
from triage.deadlines import find_deadlines
from triage.signals import detect, raise_urgency, urgency_floor

TODAY = date(2026, 11, 23)  # a Monday


def types(text: str, config: TriageConfig) -> list[str]:
    return [s.type for s in detect(text, config, TODAY)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("贷款还不上了，我真的不想活了", "self_harm"),
        ("再这样逼我，我就从楼上跳下去", "self_harm"),
        ("卡里的钱还在扣，一分钟一笔", "fraud_in_progress"),
        ("刚被骗了，对方还在让我转账", "fraud_in_progress"),
        ("催收说要上门打断我的腿", "violence"),
        ("他们威胁家人人身安全", "violence"),
        ("我妈妈82岁了，被忽悠买了保险", "vulnerable"),
        ("家里老人不会用手机银行", "vulnerable"),
        ("我怀孕了行动不便，能不能不去网点", "vulnerable"),
        ("我已经打了12378", "regulator"),
        ("我要向金融监管总局反映", "regulator"),
        ("再不处理就找记者曝光你们", "media"),
        ("我要发抖音让大家看看", "media"),
        ("已经请了律师准备起诉", "legal"),
        ("我已经报警了", "legal"),
        ("这是我第三次投诉了", "repeat"),
        ("多次反映一直没解决", "repeat"),
        ("被盗刷了两万元", "amount"),
        ("明天给我答复", "deadline"),
    ],
)
def test_detects_each_signal(text: str, expected: str, config: TriageConfig) -> None:
    assert expected in types(text, config)


@pytest.mark.parametrize(
    "text", ["我想咨询一下信用卡年费", "个人行为与银行无关", "手机银行登录不了", "请问网点几点开门"]
)
def test_quiet_texts_raise_nothing(text: str, config: TriageConfig) -> None:
    signals = detect(text, config, TODAY)
    assert urgency_floor(signals, {"issue": "operations"}, config, TODAY) == {}


def test_spans_index_into_the_text(config: TriageConfig) -> None:
    text = "信用卡被盗刷1.2万元，还在扣款，再不处理我就打12378"
    for s in detect(text, config, TODAY):
        assert s.start is not None and s.end is not None
        assert text[s.start : s.end] == s.text


def final(text: str, model: str, config: TriageConfig, issue: str = "operations") -> tuple[str, list[str]]:
    signals = detect(text, config, TODAY)
    return raise_urgency(model, urgency_floor(signals, {"issue": issue}, config, TODAY))


@pytest.mark.parametrize(
    ("text", "model", "issue", "urgency", "raised_by"),
    [
        # P1 signals
        ("我不想活了", "P3", "other", "P1", ["self_harm"]),
        ("钱还在被转走，快帮我", "P2", "funds_security", "P1", ["fraud_in_progress"]),
        ("催收扬言泼油漆", "P3", "debt_collection", "P1", ["violence", "issue:debt_collection"]),
        # vulnerable: P2 alone, P1 with a loss (an amount, or issue funds_security)
        ("我父亲75岁，网银不会用", "P4", "operations", "P2", ["vulnerable"]),
        ("我父亲75岁，被骗了三千元", "P3", "operations", "P1", ["vulnerable"]),
        ("老人的卡被盗刷了", "P3", "funds_security", "P1", ["vulnerable"]),
        # regulator/media/legal: P2, P1 with a deadline within 3 days
        ("不处理我就打12378", "P3", "operations", "P2", ["regulator"]),
        ("明天就去金融监管局投诉", "P3", "operations", "P1", ["regulator"]),
        ("周三前不给说法就发抖音曝光", "P3", "operations", "P1", ["media"]),
        ("周五前不给说法就发抖音曝光", "P3", "operations", "P2", ["media"]),
        ("下周一不处理就起诉", "P3", "operations", "P2", ["legal"]),
        ("12月30日前不解决就起诉", "P3", "operations", "P2", ["legal"]),
        ("11月25日前不解决就起诉", "P3", "operations", "P1", ["legal"]),
        # repeat, amount threshold, head rule
        ("第二次投诉了", "P4", "service_quality", "P2", ["repeat"]),
        ("被扣了5万元", "P3", "pricing_fees", "P2", ["amount"]),
        ("被扣了4万元", "P3", "pricing_fees", "P3", []),
        ("天天打电话给我单位", "P3", "debt_collection", "P2", ["issue:debt_collection"]),
        # a signal never lowers urgency
        ("我要打12378", "P1", "operations", "P1", []),
        # a deadline alone does nothing
        ("明天给我回电话", "P3", "operations", "P3", []),
    ],
)
def test_urgency_effects(
    text: str, model: str, issue: str, urgency: str, raised_by: list[str], config: TriageConfig
) -> None:
    assert final(text, model, config, issue) == (urgency, raised_by)


def test_repeat_from_the_store(config: TriageConfig) -> None:
    quiet = detect("卡又被冻结了", config, TODAY, prior_tickets=1)
    assert "repeat" not in [s.type for s in quiet]
    repeat = detect("卡又被冻结了", config, TODAY, prior_tickets=2)
    store = [s for s in repeat if s.type == "repeat"]
    assert store and store[0].start is None
    assert raise_urgency("P3", urgency_floor(repeat, {}, config, TODAY)) == ("P2", ["repeat"])


@pytest.mark.parametrize(
    ("text", "on"),
    [
        ("今天", date(2026, 11, 23)),
        ("明天", date(2026, 11, 24)),
        ("后天", date(2026, 11, 25)),
        ("周五前", date(2026, 11, 27)),
        ("下周一", date(2026, 11, 30)),
        ("11月30日", date(2026, 11, 30)),
        ("十二月三日", date(2026, 12, 3)),
        ("3天内", date(2026, 11, 26)),
        ("月底前", date(2026, 11, 30)),
    ],
)
def test_deadlines_resolve_to_dates(text: str, on: date) -> None:
    assert [d.on for d in find_deadlines(text, TODAY)] == [on]


def test_next_week_from_midweek() -> None:
    wednesday = date(2026, 11, 25)
    assert [d.on for d in find_deadlines("下周一", wednesday)] == [date(2026, 11, 30)]
    assert [d.on for d in find_deadlines("周一", wednesday)] == [date(2026, 11, 30)]
    assert [d.on for d in find_deadlines("周三", wednesday)] == [wednesday]


def test_past_dates_are_not_deadlines() -> None:
    assert find_deadlines("11月3日被扣款", TODAY) == []
