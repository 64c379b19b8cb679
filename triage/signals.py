"""Deterministic risk signals (SPEC section 2) and how they raise urgency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from triage.amounts import find_amounts
from triage.config import URGENCIES, TriageConfig
from triage.deadlines import find_deadlines


@dataclass(frozen=True)
class Signal:
    type: str
    text: str
    start: int | None
    end: int | None
    value: float | str | None = None
    turn: int | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"type": self.type, "text": self.text, "start": self.start, "end": self.end}
        if self.value is not None:
            out["value"] = self.value
        if self.turn is not None:
            out["turn"] = self.turn
        return out


def more_urgent(a: str, b: str) -> str:
    return a if URGENCIES.index(a) <= URGENCIES.index(b) else b


def detect(text: str, config: TriageConfig, today: date, prior_tickets: int = 0) -> list[Signal]:
    """Every signal in the (masked, normalised) text, ordered by position.

    `prior_tickets` is how many tickets the store holds for the same customer
    within the repeat window; enough of them is a `repeat` signal without a span.
    """
    found: list[Signal] = []
    for rule in config.signals.values():
        taken: list[tuple[int, int]] = []
        for pattern in rule.patterns:
            for m in pattern.finditer(text):
                if m.end() > m.start() and not any(m.start() < e and s < m.end() for s, e in taken):
                    taken.append((m.start(), m.end()))
                    found.append(Signal(rule.type, m.group(), m.start(), m.end()))
    for a in find_amounts(text):
        found.append(Signal("amount", a.text, a.start, a.end, a.value))
    for d in find_deadlines(text, today):
        found.append(Signal("deadline", d.text, d.start, d.end, d.on.isoformat()))
    repeat = config.signals["repeat"]
    if repeat.store_min_tickets and prior_tickets >= repeat.store_min_tickets:
        found.append(
            Signal("repeat", f"近{repeat.store_window_days}天内已有{prior_tickets}张工单", None, None, prior_tickets)
        )
    return sorted(found, key=lambda s: (s.start if s.start is not None else 1 << 30, s.type))


def urgency_floor(signals: list[Signal], labels: dict[str, str], config: TriageConfig, today: date) -> dict[str, str]:
    """The urgency each fired signal or head rule demands: {reason: urgency}.

    `labels` are the model's labels for the other heads (issue, category...).
    """
    present = {s.type for s in signals}
    refs = present | {f"{head}:{label}" for head, label in labels.items()}
    nearest = min(
        ((date.fromisoformat(str(s.value)) - today).days for s in signals if s.type == "deadline"),
        default=None,
    )
    floors: dict[str, str] = {}
    for kind in present:
        rule = config.signals[kind]
        if rule.min_urgency is None:
            continue
        if rule.min_value_yuan is not None:
            values = [float(s.value or 0) for s in signals if s.type == kind]
            if max(values, default=0.0) < rule.min_value_yuan:
                continue
        level = rule.min_urgency
        for e in rule.escalate:
            if e.with_any and not refs.intersection(e.with_any):
                continue
            if e.deadline_within_days is not None and (nearest is None or nearest > e.deadline_within_days):
                continue
            level = more_urgent(level, e.to)
        floors[kind] = level
    for r in config.head_rules:
        if labels.get(r.head) == r.label:
            floors[f"{r.head}:{r.label}"] = r.min_urgency
    return floors


def raise_urgency(model_label: str, floors: dict[str, str]) -> tuple[str, list[str]]:
    """Final urgency and the reasons that raised it above the model's label, most urgent first."""
    final = model_label
    for level in floors.values():
        final = more_urgent(final, level)
    raised_by = sorted(
        (reason for reason, level in floors.items() if URGENCIES.index(level) < URGENCIES.index(model_label)),
        key=lambda r: (URGENCIES.index(floors[r]), r),
    )
    return final, raised_by
