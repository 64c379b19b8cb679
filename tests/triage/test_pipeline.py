"""The whole pipeline: the result object carries every field of SPEC section 8 with the right types."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import FakeClassifier
from triage.config import TriageConfig
from triage.errors import EmptyTextError, TextTooLongError, TriageError
from triage.pipeline import Triager, TriageRequest

CST = timezone(timedelta(hours=8))
RECEIVED = datetime(2026, 11, 23, 9, 15, tzinfo=CST)
EXAMPLE = "我的信用卡6222021234567890128昨晚被盗刷1.2万元，还在扣款，再不处理我就打12378"


def test_result_has_every_field_with_types(tiny_triager: Triager) -> None:
    r = json.loads(
        json.dumps(tiny_triager.triage(EXAMPLE, received_at=RECEIVED, ticket_id="TS20261123-000042").to_dict())
    )
    assert r["ticket_id"] == "TS20261123-000042"
    assert r["text_masked"] == "我的信用卡6222 **** **** 0128昨晚被盗刷1.2万元，还在扣款，再不处理我就打12378"
    for head in ("category", "issue", "urgency", "sentiment"):
        h = r[head]
        assert isinstance(h["label"], str) and isinstance(h["name"], str)
        assert 0.0 <= h["confidence"] <= 1.0 and isinstance(h["needs_review"], bool)
        named = h["model_label"] if head == "urgency" else h["label"]
        # The top label, unless urgency named P1 at its decision threshold.
        assert len(h["top"]) == 3 and (h["top"][0][0] == named or named == "P1")
        assert [p for _, p in h["top"]] == sorted((p for _, p in h["top"]), reverse=True)
    assert r["urgency"]["label"] == "P1"
    assert r["urgency"]["model_label"] == "P1" or "fraud_in_progress" in r["urgency"]["raised_by"]
    assert {s["type"] for s in r["signals"]} >= {"amount", "fraud_in_progress", "regulator"}
    for s in r["signals"]:
        assert r["text_masked"][s["start"] : s["end"]] == s["text"]
    assert r["amounts_yuan"] == [12000.0]
    assert set(r["route"]) == {"department", "cc", "queue"} and r["route"]["queue"] in ("auto", "human_review")
    assert r["sla"]["first_response_by"] == "2026-11-23T09:30:00+08:00"
    assert r["sla"]["resolve_by"] == "2026-11-24T09:15:00+08:00"
    assert r["ack"]["channel"] == "sms" and "TS20261123-000042" in r["ack"]["text"]
    assert isinstance(r["evidence"], list) and "还在扣" in r["evidence"]
    assert set(r["model"]) == {"name", "version"}


def test_no_raw_personal_data_leaves(tiny_triager: Triager) -> None:
    text = "本人王芳，手机13812345678，卡号6222021234567890128，验证码482913被骗子骗走了，身份证11010519491231002X"
    dumped = json.dumps(tiny_triager.triage(text, channel="email").to_dict(), ensure_ascii=False)
    for raw in ("王芳", "13812345678", "6222021234567890128", "482913", "11010519491231002X"):
        assert raw not in dumped


def test_rules_raise_the_model_and_say_why(fake_triager: Callable[..., Triager]) -> None:
    triager = fake_triager(urgency="P4", issue="debt_collection", category="loan")
    r = triager.triage("催收每天给我单位打电话", received_at=RECEIVED)
    assert (r.urgency.label, r.urgency.model_label, r.urgency.raised_by) == ("P2", "P4", ("issue:debt_collection",))
    assert r.route.department == "催收管理部"


@pytest.mark.parametrize(
    ("p1", "decision", "named", "review"),
    [
        (0.30, {"urgency": {"P1": 0.25}}, "P1", True),  # below the top label, above the decision threshold
        (0.20, {"urgency": {"P1": 0.25}}, "P2", False),
        (0.30, {}, "P2", False),  # no decision thresholds: the top label
        (0.30, {"urgency": {"P1": 0.25, "P2": 0.1}}, "P1", True),  # the more urgent label is looked at first
    ],
)
def test_p1_is_named_at_its_decision_threshold(
    config: TriageConfig, p1: float, decision: dict[str, dict[str, float]], named: str, review: bool
) -> None:
    classifier = FakeClassifier(config, urgency="P2", confidence=0.6)
    rows = classifier.predict(["x"])
    rows["urgency"][0] = [p1, 0.6, 1 - 0.6 - p1, 0.0]
    classifier.predict = lambda texts: {h: v.copy() for h, v in rows.items()}  # type: ignore[method-assign]
    triager = Triager(replace(config, decision_thresholds=decision), classifier)
    r = triager.triage("上个月的账单好像多扣了一笔年费", received_at=RECEIVED)
    assert (r.urgency.model_label, r.urgency.needs_review) == (named, review)
    assert r.urgency.confidence == pytest.approx(p1 if named == "P1" else 0.6)
    assert r.urgency.top[0] == ("P2", pytest.approx(0.6))
    if named == "P1":
        assert r.urgency.label == "P1" and r.sla.first_response_by == RECEIVED + timedelta(minutes=15)


def test_the_shipped_data_files_name_p1_at_a_quarter(config: TriageConfig) -> None:
    assert config.decision_thresholds == {"urgency": {"P1": 0.25}}


def test_low_confidence_goes_to_human_review(fake_triager: Callable[..., Triager]) -> None:
    r = fake_triager(confidence=0.3).triage("有点问题想反映一下", received_at=RECEIVED)
    assert r.category.needs_review and r.route.queue == "human_review"
    r = fake_triager(confidence=0.95).triage("有点问题想反映一下", received_at=RECEIVED)
    assert not r.category.needs_review and r.route.queue == "auto"


@pytest.mark.parametrize(
    ("text", "error"),
    [("", EmptyTextError), ("   \n\t ", EmptyTextError), ("长" * 5001, TextTooLongError), (123, TriageError)],
)
def test_bad_input_raises_clear_errors(text: object, error: type[Exception], tiny_triager: Triager) -> None:
    with pytest.raises(error):
        tiny_triager.triage(text)  # type: ignore[arg-type]


def test_batch_names_the_bad_item(tiny_triager: Triager) -> None:
    with pytest.raises(EmptyTextError, match="item 1"):
        tiny_triager.triage_batch([TriageRequest("卡被冻结"), TriageRequest(""), TriageRequest("年费")])


def test_batch_equals_single(tiny_triager: Triager) -> None:
    texts = ["信用卡年费乱收", "网点排队太久了", "贷款征信有逾期记录要更正"]
    batch = tiny_triager.triage_batch([TriageRequest(t, received_at=RECEIVED) for t in texts])
    for t, b in zip(texts, batch, strict=True):
        assert tiny_triager.triage(t, received_at=RECEIVED).to_dict() == b.to_dict()


def test_occlusion_evidence_names_words_that_matter(tiny_triager: Triager) -> None:
    text = "信用卡年费说好免的结果又扣了"
    fast = tiny_triager.triage(text, explain="fast")
    fine = tiny_triager.triage(text, explain="occlusion")
    assert fine.evidence and all(w in text for w in fine.evidence)
    assert (fine.category.label, fine.issue.label) == (fast.category.label, fast.issue.label)
    with pytest.raises(TriageError, match="explain"):
        tiny_triager.triage(text, explain="magic")
