"""Conversation handoff (SPEC section 5): triage the customer's turns as one case
and write the note an agent reads before picking up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from triage import HEADS
from triage.ack import format_yuan, tone_for
from triage.config import CHANNELS
from triage.deadlines import mentioned_dates
from triage.errors import EmptyTextError, TriageError
from triage.pipeline import Triager, TriageRequest
from triage.result import TriageResult
from triage.signals import Signal, detect

ROLES = ("customer", "bot", "agent")
_MOOD = {"positive": 1, "neutral": 0, "negative": -1, "angry": -2}
_QUOTE_CHARS = 60


@dataclass(frozen=True)
class Turn:
    role: str
    text: str
    time: datetime | None = None


@dataclass(frozen=True)
class HandoffNote:
    summary: str
    first_sentence: str
    sentiment_trajectory: tuple[tuple[int, str], ...]
    trend: str
    signals: tuple[Signal, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "first_sentence": self.first_sentence,
            "sentiment_trajectory": [{"turn": t, "label": label} for t, label in self.sentiment_trajectory],
            "trend": self.trend,
            "signals": [s.to_dict() for s in self.signals],
        }


def trend(labels: Sequence[str]) -> str:
    """angrier / calmer / steady, comparing the mood of the last turns with the first ones."""
    if len(labels) < 2:
        return "steady"
    scores = [_MOOD[label] for label in labels]
    half = max(1, len(scores) // 2)
    delta = float(np.mean(scores[-half:]) - np.mean(scores[:half]))
    if delta <= -0.5:
        return "angrier"
    if delta >= 0.5:
        return "calmer"
    return "steady"


_TREND_TEXT = {"angrier": "情绪逐渐激动", "calmer": "情绪有所缓和", "steady": "情绪平稳"}


def handoff(
    triager: Triager,
    conversation: Sequence[Turn],
    channel: str = "chat",
    received_at: datetime | None = None,
    ticket_id: str | None = None,
    prior_tickets: int = 0,
) -> tuple[TriageResult, HandoffNote]:
    config = triager.config
    if not conversation:
        raise EmptyTextError("conversation is empty")
    for i, turn in enumerate(conversation):
        if turn.role not in ROLES:
            raise TriageError(f"turn {i}: role must be one of {', '.join(ROLES)}")
    customer = [(i, t) for i, t in enumerate(conversation) if t.role == "customer" and t.text.strip()]
    if not customer:
        raise EmptyTextError("the conversation has no customer text")
    if channel not in CHANNELS:
        raise TriageError(f"unknown channel {channel!r}")
    # Each turn is validated and masked on its own: the text limit applies per turn,
    # so a long conversation of acceptable turns is not refused as a whole.
    masked_turns = [(i, triager.prepare(t.text)) for i, t in customer]
    case_text = "\n".join(m for _, m in masked_turns)
    if received_at is None:
        received_at = next((t.time for t in reversed(conversation) if t.time is not None), None)
    # One model call: the case first, then every customer turn for the sentiment trajectory.
    probs = triager.predict_masked([case_text] + [m for _, m in masked_turns])
    request = TriageRequest(case_text, channel, received_at, ticket_id, prior_tickets)
    result = triager.assemble(request, case_text, {h: probs[h][0] for h in HEADS})

    sentiment_labels = list(triager.classifier.labels["sentiment"])
    per_turn = probs["sentiment"][1:]
    trajectory = tuple(
        (i, sentiment_labels[int(np.argmax(p))]) for (i, _), p in zip(masked_turns, per_turn, strict=True)
    )
    today = datetime.fromisoformat(result.received_at).date()
    turn_signals = tuple(
        Signal(s.type, s.text, s.start, s.end, s.value, turn=i)
        for i, m in masked_turns
        for s in detect(m, config, today)
    )
    bot_text = "\n".join(t.text for t in conversation if t.role == "bot")
    tried = [text for pattern, text in config.handoff.bot_actions if pattern.search(bot_text)]
    direction = trend([label for _, label in trajectory])

    templates = config.templates
    product = templates.product[result.category.label]
    problem = templates.problem[result.issue.label]
    restatement = f"{product}{problem}" if product else problem
    parts = [f"客户反映{restatement}（{result.category.name}/{result.issue.name}）"]
    if result.amounts_yuan:
        parts.append("涉及金额" + "、".join(format_yuan(a) for a in dict.fromkeys(result.amounts_yuan)))
    dates = list(dict.fromkeys(mentioned_dates(case_text)))
    if dates:
        parts.append("提及时间" + "、".join(dates[:4]))
    risky = [s for s in turn_signals if s.type not in ("amount", "deadline")]
    if risky:
        parts.append("风险提示：" + "、".join(dict.fromkeys(f"{s.text}(第{s.turn}轮)" for s in risky)))
    parts.append(("机器人已" + "、".join(tried)) if tried else "机器人未能处理")
    longest = max((m for _, m in masked_turns), key=len)
    quote = longest if len(longest) <= _QUOTE_CHARS else longest[:_QUOTE_CHARS] + "……"
    parts.append(f"客户原话：「{quote}」")
    parts.append(f"紧急程度{result.urgency.label}，客户{result.sentiment.name}，{_TREND_TEXT[direction]}")
    summary = "；".join(parts) + "。"

    tone = tone_for(result.urgency.label, result.sentiment.label)
    first = config.handoff.first_sentence[tone].format(restatement=restatement)
    if result.issue.label == "funds_security" or any(s.type == "fraud_in_progress" for s in turn_signals):
        first += config.handoff.fraud_sentence
    return result, HandoffNote(summary, first, trajectory, direction, turn_signals)
