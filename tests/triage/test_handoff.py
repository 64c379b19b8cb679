"""Conversation handoff notes (SPEC section 5)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from triage.errors import EmptyTextError, TriageError
from triage.handoff import Turn, handoff, trend
from triage.pipeline import Triager

CST = timezone(timedelta(hours=8))
CONVERSATION = [
    Turn("customer", "你好，我的信用卡好像有问题"),
    Turn("bot", "您好，请提供卡号后四位，我帮您查询。"),
    Turn("customer", "尾号0128，昨天晚上被刷了三笔，一共1.2万元"),
    Turn("bot", "建议您先通过App挂失卡片，或拨打客服热线。"),
    Turn("customer", "挂失了还在扣款！！你们到底管不管，明天不处理我就打12378"),
    Turn("customer", "转人工"),
]


def test_note_summarises_what_the_customer_said(fake_triager: Callable[..., Triager]) -> None:
    triager = fake_triager(category="credit_card", issue="funds_security", urgency="P2", sentiment="angry")
    result, note = handoff(triager, CONVERSATION, received_at=datetime(2026, 11, 23, 20, 0, tzinfo=CST))
    assert result.urgency.label == "P1"
    assert "信用卡" in note.summary and "1.2万元" in note.summary
    assert "建议挂失" in note.summary and "引导拨打客服热线" in note.summary
    assert "昨天晚上" in note.summary or "明天" in note.summary
    assert [t for t, _ in note.sentiment_trajectory] == [0, 2, 4, 5]
    by_type = {s.type: s.turn for s in note.signals}
    assert by_type["fraud_in_progress"] == 4 and by_type["regulator"] == 4 and by_type["amount"] == 2
    assert "冻结" in note.first_sentence


def test_signals_carry_spans_within_their_turn(fake_triager: Callable[..., Triager]) -> None:
    _, note = handoff(fake_triager(), CONVERSATION)
    texts = {i: t.text for i, t in enumerate(CONVERSATION)}
    for s in note.signals:
        assert s.turn is not None and s.start is not None
        assert texts[s.turn][s.start : s.end] == s.text


def test_personal_data_is_masked_in_the_note(fake_triager: Callable[..., Triager]) -> None:
    conv = [Turn("customer", "我手机13812345678，卡号6222021234567890128被盗刷"), Turn("bot", "请稍候")]
    _, note = handoff(fake_triager(), conv)
    assert "13812345678" not in note.summary and "6222021234567890128" not in note.summary


@pytest.mark.parametrize(
    ("labels", "direction"),
    [
        (["neutral", "negative", "angry", "angry"], "angrier"),
        (["angry", "angry", "negative", "neutral"], "calmer"),
        (["negative", "negative", "negative"], "steady"),
        (["angry"], "steady"),
    ],
)
def test_trend(labels: list[str], direction: str) -> None:
    assert trend(labels) == direction


def test_bad_conversations_are_refused(fake_triager: Callable[..., Triager]) -> None:
    triager = fake_triager()
    with pytest.raises(EmptyTextError):
        handoff(triager, [])
    with pytest.raises(EmptyTextError):
        handoff(triager, [Turn("bot", "您好")])
    with pytest.raises(TriageError, match="role"):
        handoff(triager, [Turn("robot", "您好")])


def test_a_long_conversation_of_acceptable_turns_is_triaged(fake_triager: Callable[..., Triager]) -> None:
    turn = "我的贷款每个月都被多扣了利息，" * 100  # 1,500 characters, under the per-text limit
    conv = [
        Turn("customer", turn),
        Turn("bot", "请稍候"),
        Turn("customer", turn),
        Turn("customer", turn),
        Turn("customer", turn),
    ]
    result, note = handoff(fake_triager(), conv)
    assert len(result.text_masked) > 5000 and len(note.sentiment_trajectory) == 4


def test_unknown_channel_is_refused(fake_triager: Callable[..., Triager]) -> None:
    with pytest.raises(TriageError, match="channel"):
        handoff(fake_triager(), CONVERSATION, channel="fax")
