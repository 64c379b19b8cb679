"""Acknowledgement drafts (SPEC section 4): filled from data-file templates, then checked.

A draft thanks and apologises, restates the problem in the customer's terms,
gives the ticket number and the next contact time (contact, never an
outcome), and never promises money or blame. Each channel's variants are
tried longest first, with the restatement shrinking, until one passes the checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from triage.config import CHANNELS, TONES, TriageConfig
from triage.errors import ConfigError, DraftError, TriageError

_LEFTOVER = re.compile(r"\{[^{}]*\}")
PENDING_TICKET = "待分配"
_WORST_TICKET = "TS20261231-999999"
_WORST_CONTACT = "12月31日23:59"


@dataclass(frozen=True)
class DraftInput:
    channel: str
    category: str
    issue: str
    urgency: str
    sentiment: str
    amounts: tuple[float, ...]
    fraud: bool
    ticket_id: str | None
    contact_by: datetime
    received_at: datetime


def tone_for(urgency: str, sentiment: str) -> str:
    if urgency == "P1":
        return "urgent"
    if sentiment == "positive":
        return "positive"
    if sentiment == "angry":
        return "angry"
    if urgency == "P4":
        return "inquiry"
    return "standard"


def format_yuan(value: float) -> str:
    if value >= 10_000:
        return f"{value / 10_000:.2f}".rstrip("0").rstrip(".") + "万元"
    return f"{value:.2f}".rstrip("0").rstrip(".") + "元"


def contact_phrase(contact_by: datetime, received_at: datetime) -> str:
    """今天12:00 / 明天09:30 / 11月25日18:00, read in the deadline's own time zone."""
    local_received = received_at.astimezone(contact_by.tzinfo)
    days = (contact_by.date() - local_received.date()).days
    clock = contact_by.strftime("%H:%M")
    if days == 0:
        return f"今天{clock}"
    if days == 1:
        return f"明天{clock}"
    return f"{contact_by.month}月{contact_by.day}日{clock}"


def check_draft(text: str, channel: str, config: TriageConfig) -> list[str]:
    """Problems that forbid sending `text`; empty when it may be sent."""
    problems = []
    limit = config.templates.limits[channel]
    if len(text) > limit:
        problems.append(f"{len(text)} characters, over the {channel} limit of {limit}")
    if _LEFTOVER.search(text):
        problems.append(f"unfilled placeholder {_LEFTOVER.search(text).group()}")  # type: ignore[union-attr]
    for phrase in config.templates.banned:
        if phrase in text:
            problems.append(f"banned phrase {phrase!r}")
    for department in config.routing.departments():
        if department in text:
            problems.append(f"internal department name {department!r}")
    for head in ("category", "issue"):
        for label_id in config.label_ids(head):
            if "_" in label_id and label_id in text:
                problems.append(f"internal label id {label_id!r}")
    return problems


def _restatements(config: TriageConfig, category: str, issue: str, amounts: tuple[float, ...]) -> list[str]:
    t = config.templates
    product, problem = t.product[category], t.problem[issue]
    levels = t.levels if amounts else t.no_amount_levels
    amount = format_yuan(max(amounts)) if amounts else ""
    out = []
    for level in levels:
        text = level.format(product=product, problem=problem, amount=amount)
        if text not in out:
            out.append(text)
    return out


def _fill(template: str, values: dict[str, str]) -> str:
    return template.format_map(values)


def draft(config: TriageConfig, d: DraftInput) -> str:
    """The first variant that passes every check, from the fullest restatement down."""
    if d.channel not in CHANNELS:
        raise TriageError(f"unknown channel {d.channel!r}; use one of {', '.join(CHANNELS)}")
    dep = config.deployment
    tone = tone_for(d.urgency, d.sentiment)
    values = {
        "signature": dep.sms_signature,
        "bank": dep.bank_name,
        "hotline": dep.hotline,
        "ticket": d.ticket_id or PENDING_TICKET,
        "contact_time": contact_phrase(d.contact_by, d.received_at),
        "fraud_advice": config.templates.fraud_advice[d.channel].format(hotline=dep.hotline) if d.fraud else "",
    }
    problems: list[str] = []
    for template in config.templates.variants[d.channel][tone]:
        for restatement in _restatements(config, d.category, d.issue, d.amounts):
            text = _fill(template, values | {"restatement": restatement}).strip()
            problems = check_draft(text, d.channel, config)
            if not problems:
                return text
    raise DraftError(f"no {d.channel} draft passes the checks: {'; '.join(problems)}")


def check_templates_fit(config: TriageConfig) -> None:
    """At load: the shortest variant of every channel and tone must pass with the longest values."""
    dep = config.deployment
    for channel in CHANNELS:
        for tone in TONES:
            shortest = config.templates.variants[channel][tone][-1]
            fraud = config.templates.fraud_advice[channel].format(hotline=dep.hotline) if tone == "urgent" else ""
            text = _fill(
                shortest,
                {
                    "signature": dep.sms_signature,
                    "bank": dep.bank_name,
                    "hotline": dep.hotline,
                    "ticket": _WORST_TICKET,
                    "contact_time": _WORST_CONTACT,
                    "fraud_advice": fraud,
                    "restatement": config.templates.no_amount_levels[-1],
                },
            ).strip()
            problems = check_draft(text, channel, config)
            if problems:
                raise ConfigError(f"templates.toml [{channel}].{tone}: {'; '.join(problems)}")
