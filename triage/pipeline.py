"""One complaint through the whole pipeline: `Triager.triage(text) -> TriageResult`.

Order matters: validation, normalisation and PII masking come first, so the
model, the signals, the drafts and everything stored see masked text only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from triage import HEADS
from triage.ack import DraftInput, draft
from triage.classifier import Classifier
from triage.config import CHANNELS, TriageConfig
from triage.errors import EmptyTextError, TextTooLongError, TriageError
from triage.explain import occlusion
from triage.pii import mask_text
from triage.result import Ack, HeadResult, TriageResult, UrgencyResult
from triage.routing import route, sla
from triage.signals import Signal, detect, raise_urgency, urgency_floor
from triage.text import fit_to_budget, normalize

# Characters the model reads; longer texts keep their head and tail.
MODEL_MAX_CHARS = 400
EXPLAIN = ("fast", "occlusion")
_EVIDENCE_SIGNALS = {
    "self_harm",
    "fraud_in_progress",
    "violence",
    "vulnerable",
    "regulator",
    "media",
    "legal",
    "repeat",
}


@dataclass(frozen=True)
class TriageRequest:
    text: str
    channel: str = "sms"
    received_at: datetime | None = None
    ticket_id: str | None = None
    prior_tickets: int = 0
    explain: str = "fast"  # "fast": the model's own word weights; "occlusion": slower, any model


def prepare(text: object, max_chars: int) -> str:
    """Validate raw input, then normalise and mask it."""
    if not isinstance(text, str):
        raise TriageError("text must be a string")
    if not text.strip():
        raise EmptyTextError("text is empty")
    if len(text) > max_chars:
        raise TextTooLongError(f"text has {len(text)} characters; the limit is {max_chars}")
    masked = mask_text(normalize(text))
    if not masked:
        raise EmptyTextError("text is empty after normalisation")
    return masked


class Triager:
    """The library's front door: configuration + a classifier."""

    def __init__(self, config: TriageConfig, classifier: Classifier, model_max_chars: int | None = None) -> None:
        config.check_model_labels({h: list(classifier.labels[h]) for h in HEADS})
        self.config = config
        self.classifier = classifier
        # An encoder declares the characters its token budget holds; others read MODEL_MAX_CHARS.
        self.model_max_chars = model_max_chars or int(getattr(classifier, "max_chars", MODEL_MAX_CHARS))
        self.thresholds = {
            head: config.threshold_overrides.get(
                head, classifier.thresholds.get(head, config.fallback_thresholds.get(head, 0.0))
            )
            for head in HEADS
        }

    @property
    def model_info(self) -> dict[str, str]:
        return {"name": self.classifier.name, "version": self.classifier.version}

    def prepare(self, text: object) -> str:
        return prepare(text, self.config.deployment.max_text_chars)

    def predict_masked(self, masked: Sequence[str]) -> dict[str, NDArray[np.float64]]:
        return self.classifier.predict([fit_to_budget(t, self.model_max_chars) for t in masked])

    def triage(
        self,
        text: str,
        channel: str = "sms",
        received_at: datetime | None = None,
        ticket_id: str | None = None,
        prior_tickets: int = 0,
        explain: str = "fast",
    ) -> TriageResult:
        return self.triage_batch([TriageRequest(text, channel, received_at, ticket_id, prior_tickets, explain)])[0]

    def triage_batch(self, requests: Sequence[TriageRequest]) -> list[TriageResult]:
        """Validate every item first (one bad item fails the batch), then one model call."""
        masked = []
        for i, r in enumerate(requests):
            if r.channel not in CHANNELS:
                raise TriageError(f"item {i}: unknown channel {r.channel!r}")
            if r.explain not in EXPLAIN:
                raise TriageError(f"item {i}: explain must be one of {', '.join(EXPLAIN)}")
            try:
                masked.append(self.prepare(r.text))
            except TriageError as exc:
                raise type(exc)(f"item {i}: {exc}" if len(requests) > 1 else str(exc)) from exc
        probs = self.predict_masked(masked) if masked else {}
        return [
            self.assemble(r, m, {h: probs[h][i] for h in HEADS})
            for i, (r, m) in enumerate(zip(requests, masked, strict=True))
        ]

    def _head(self, head: str, p: NDArray[np.float64]) -> HeadResult:
        labels = list(self.classifier.labels[head])
        order = np.argsort(-p)[:3]
        top = tuple((labels[j], float(p[j])) for j in order)
        label, confidence = top[0]
        # Labels with a decision threshold (urgency P1) are named at a lower probability; the first in taxonomy order wins.
        for candidate, at in self.config.decision_thresholds.get(head, {}).items():
            if candidate == label:
                break
            chance = float(p[labels.index(candidate)])
            if chance >= at:
                label, confidence = candidate, chance
                break
        return HeadResult(
            label=label,
            name=self.config.label_name(head, label),
            confidence=confidence,
            top=top,
            needs_review=confidence < self.thresholds[head],
        )

    def assemble(self, request: TriageRequest, masked: str, probs: Mapping[str, NDArray[np.float64]]) -> TriageResult:
        """Everything after the model: signals, urgency rules, routing, SLA, draft, evidence."""
        config = self.config
        received = config.deployment.local((request.received_at or datetime.now(UTC)).replace(microsecond=0))
        today = received.astimezone(config.deployment.timezone).date()
        heads = {h: self._head(h, probs[h]) for h in HEADS}
        signals = detect(masked, config, today, request.prior_tickets)
        floors = urgency_floor(
            signals,
            {"category": heads["category"].label, "issue": heads["issue"].label, "sentiment": heads["sentiment"].label},
            config,
            today,
        )
        model_urgency = heads["urgency"]
        final, raised_by = raise_urgency(model_urgency.label, floors)
        urgency = UrgencyResult(
            label=final,
            name=config.label_name("urgency", final),
            confidence=model_urgency.confidence,
            top=model_urgency.top,
            needs_review=model_urgency.needs_review,
            model_label=model_urgency.label,
            raised_by=tuple(raised_by),
        )
        types = {s.type for s in signals}
        category, issue, sentiment = heads["category"], heads["issue"], heads["sentiment"]
        case_route = route(
            config, category.label, issue.label, final, types, category.needs_review or issue.needs_review
        )
        deadlines = sla(config, final, received)
        amounts = tuple(float(s.value) for s in signals if s.type == "amount" and s.value is not None)
        ack_text = self._draft(
            request.channel,
            category.label,
            issue.label,
            final,
            sentiment.label,
            amounts,
            types,
            request.ticket_id,
            deadlines.first_response_by,
            received,
        )
        return TriageResult(
            ticket_id=request.ticket_id,
            text_masked=masked,
            category=category,
            issue=issue,
            urgency=urgency,
            sentiment=sentiment,
            signals=tuple(signals),
            amounts_yuan=amounts,
            route=case_route,
            sla=deadlines,
            ack=Ack(request.channel, ack_text),
            evidence=tuple(self._evidence(masked, category.label, issue.label, signals, request.explain)),
            model=self.model_info,
            received_at=received.astimezone(config.deployment.timezone).isoformat(),
        )

    def _draft(
        self,
        channel: str,
        category: str,
        issue: str,
        urgency: str,
        sentiment: str,
        amounts: tuple[float, ...],
        signal_types: set[str],
        ticket_id: str | None,
        contact_by: datetime,
        received: datetime,
    ) -> str:
        fraud = issue == "funds_security" or "fraud_in_progress" in signal_types
        return draft(
            self.config,
            DraftInput(channel, category, issue, urgency, sentiment, amounts, fraud, ticket_id, contact_by, received),
        )

    def with_ticket(self, result: TriageResult, ticket_id: str) -> TriageResult:
        """The result once the store has numbered it: the draft is written again with the number,
        so its length checks hold for the real number (no model call)."""
        text = self._draft(
            result.ack.channel,
            result.category.label,
            result.issue.label,
            result.urgency.label,
            result.sentiment.label,
            result.amounts_yuan,
            {s.type for s in result.signals},
            ticket_id,
            result.sla.first_response_by,
            datetime.fromisoformat(result.received_at),
        )
        return replace(result, ticket_id=ticket_id, ack=Ack(result.ack.channel, text))

    def _evidence(
        self, masked: str, category: str, issue: str, signals: Sequence[Signal], explain: str = "fast"
    ) -> list[str]:
        text = fit_to_budget(masked, self.model_max_chars)
        predicted = {"category": category, "issue": issue}
        if explain == "occlusion":
            words = occlusion(self.classifier, text, predicted, k=5)
        else:
            words = self.classifier.evidence(text, predicted, k=5)
        out: list[str] = []
        for w in words + [s.text for s in signals if s.type in _EVIDENCE_SIGNALS and s.start is not None]:
            if w not in out:
                out.append(w)
        return out[:8]
