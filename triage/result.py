"""The result of triaging one complaint (SPEC section 8), as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triage.routing import Route, Sla
from triage.signals import Signal


@dataclass(frozen=True)
class HeadResult:
    label: str
    name: str
    confidence: float
    top: tuple[tuple[str, float], ...]
    needs_review: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "name": self.name,
            "confidence": round(self.confidence, 4),
            "top": [[label, round(p, 4)] for label, p in self.top],
            "needs_review": self.needs_review,
        }


@dataclass(frozen=True)
class UrgencyResult(HeadResult):
    model_label: str = ""
    raised_by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"model_label": self.model_label, "raised_by": list(self.raised_by)}


@dataclass(frozen=True)
class Ack:
    channel: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"channel": self.channel, "text": self.text}


@dataclass(frozen=True)
class TriageResult:
    ticket_id: str | None
    text_masked: str
    category: HeadResult
    issue: HeadResult
    urgency: UrgencyResult
    sentiment: HeadResult
    signals: tuple[Signal, ...]
    amounts_yuan: tuple[float, ...]
    route: Route
    sla: Sla
    ack: Ack
    evidence: tuple[str, ...]
    model: dict[str, str]
    received_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ticket_id": self.ticket_id,
            "text_masked": self.text_masked,
            "category": self.category.to_dict(),
            "issue": self.issue.to_dict(),
            "urgency": self.urgency.to_dict(),
            "sentiment": self.sentiment.to_dict(),
            "signals": [s.to_dict() for s in self.signals],
            "amounts_yuan": list(self.amounts_yuan),
            "route": self.route.to_dict(),
            "sla": self.sla.to_dict(),
            "ack": self.ack.to_dict(),
            "evidence": list(self.evidence),
            "model": dict(self.model),
            "received_at": self.received_at,
        }
        out.update(self.extra)
        return out
