"""Department routing and service-level deadlines (SPEC section 3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from triage.config import TriageConfig


@dataclass(frozen=True)
class Route:
    department: str
    cc: tuple[str, ...]
    queue: str

    def to_dict(self) -> dict[str, object]:
        return {"department": self.department, "cc": list(self.cc), "queue": self.queue}


@dataclass(frozen=True)
class Sla:
    first_response_by: datetime
    resolve_by: datetime

    def to_dict(self) -> dict[str, str]:
        return {"first_response_by": self.first_response_by.isoformat(), "resolve_by": self.resolve_by.isoformat()}


def route(
    config: TriageConfig,
    category: str,
    issue: str,
    urgency: str,
    signal_types: set[str],
    needs_review: bool,
) -> Route:
    """Department and copies for a case; `needs_review` sends it to the human review queue."""
    table = config.routing
    chain = [table.by_category[category]]
    extra_cc: list[str] = []
    for override in table.overrides:
        if override.issue == issue:
            chain.insert(0, override.department)
            extra_cc.extend(override.cc)
    for copy in table.copies:
        if signal_types.intersection(copy.signals) or urgency in copy.urgency:
            extra_cc.extend(copy.cc)
    department = chain[0]
    cc: list[str] = []
    for name in chain[1:] + extra_cc:
        if name != department and name not in cc:
            cc.append(name)
    return Route(department, tuple(cc), "human_review" if needs_review else "auto")


def sla(config: TriageConfig, urgency: str, received_at: datetime) -> Sla:
    """Absolute deadlines in the deployment's time zone, in calendar time.

    A naive `received_at` is taken as local time. The durations are added in
    UTC so that they stay exact where the zone changes its offset.
    """
    tz = config.deployment.timezone
    start = config.deployment.local(received_at).astimezone(UTC)
    level = config.sla[urgency]
    return Sla(
        first_response_by=(start + level.first_response).astimezone(tz),
        resolve_by=(start + level.resolve).astimezone(tz),
    )
