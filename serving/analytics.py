"""Volume, service-level status, spike warnings and the monthly report (SPEC sections 7 and 8).

Pure functions over plain records (`TicketFacts`): the store turns its rows into
facts, and nothing here knows about the database or the web layer.

Spike rule (the early warning of SPEC section 7), per category:

- The window is the `window` (default 24 hours) ending at `now`, or "today" (from
  local midnight to `now`). Its baseline is the same stretch of clock time on each
  of the `baseline_days` (default 14) days before, so an hourly window is compared
  with the same hour of earlier days, never with the night. Baseline days that
  start before the history does (`history_start`, by default the first fact) are
  left out, and with fewer than `min_baseline_days` (7) left no alert is raised: a
  new installation would otherwise read its first weeks as a spike.
- `expected` is the mean m of the baseline counts, s² their sample variance, n
  their number. The window's count X is modelled as negative binomial (counts
  are skewed to the right) with mean mu = max(m, rate_floor) and variance
  v = max(c * s², mu) * (1 + 1/n), where c = (t / z)² is the Student-t quantile
  (n - 1 degrees of freedom) over the normal quantile, both at the test level
  alpha / K: 1.85 for 14 days and 8 categories. Because s² is itself estimated
  from n days, c makes the threshold that of a t prediction interval for a new
  day where the normal approximation holds; widening only the extra-Poisson part
  gave 3 to 4 times the nominal false-alarm rate on overdispersed data. The
  floor mu: a count is never less noisy than Poisson (this also covers
  weekday patterns and small incidents, which raise s²). 1 + 1/n: m is an
  estimate too. rate_floor (1 a window) keeps a category that was silent from
  making any single ticket look impossible.
- p = P(X >= observed) under that model; `score` = -log10 p (3 means 1 in 1,000).
  Where p is below floating point (score above 300), the point probability
  P(X = observed) stands in: slightly larger a score, far beyond any threshold.
- An alert needs all three: p < alpha / K (alpha 0.001, Bonferroni over the K
  categories tested, i.e. score > -log10(alpha / K), 3.9 for 8 categories);
  observed >= expected + min_excess (5), so a small category does not alert on
  0 -> 3; and observed >= min_ratio * expected (1.5), so a large steady category
  needs a real jump ("well above its recent baseline"), not a statistically
  detectable drift of a few per cent.
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from triage.config import TriageConfig
from triage.errors import TriageError

STATUSES = ("new", "in_progress", "replied", "resolved")
SLA_STATES = ("on_track", "due_soon", "breached", "met")
SLA_TARGETS = ("first_response", "resolution")
VOLUME_KEYS = ("category", "issue", "urgency", "department")
REPORT_HEADS = ("category", "issue", "urgency")
DAY = timedelta(days=1)
_STEP = {"day": DAY, "hour": timedelta(hours=1)}
_US = timedelta(microseconds=1)

Bucket = Literal["day", "hour"]
LabelNames = Mapping[str, Mapping[str, str]]


class AnalyticsError(TriageError):
    """Bad arguments to an analytics function (422 validation_error at the API)."""


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise AnalyticsError(f"{name} must carry a time zone")
    return value


@dataclass(frozen=True)
class TicketFacts:
    """What analytics needs to know about one ticket; every time is time-zone aware."""

    ticket_id: str
    received_at: datetime
    category: str
    issue: str
    urgency: str
    sentiment: str
    department: str
    source: str | None
    status: str
    first_response_by: datetime
    resolve_by: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    needs_review: bool

    def __post_init__(self) -> None:
        for name in ("received_at", "first_response_by", "resolve_by", "first_response_at", "resolved_at"):
            value = getattr(self, name)
            if value is not None:
                _aware(value, f"ticket {self.ticket_id}: {name}")
        if self.status not in STATUSES:
            raise AnalyticsError(f"ticket {self.ticket_id}: unknown status {self.status!r}, expected one of {STATUSES}")
        if self.status == "resolved" and self.resolved_at is None:
            raise AnalyticsError(f"ticket {self.ticket_id}: resolved without resolved_at")

    @property
    def responded_at(self) -> datetime | None:
        """Resolving a ticket answers the customer too, so it counts as the first response."""
        done = [t for t in (self.first_response_at, self.resolved_at) if t is not None]
        return min(done) if done else None


# Volume


@dataclass(frozen=True)
class VolumePoint:
    bucket_start: datetime
    key: str
    count: int


def _floor(moment: datetime, bucket: Bucket, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz)
    if bucket == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return datetime.combine(local.date(), time(), tzinfo=tz)


def _next_bucket(start: datetime, bucket: Bucket, tz: ZoneInfo) -> datetime:
    if bucket == "hour":
        # Step in absolute time: local clock hours repeat or vanish at daylight-saving changes.
        return (start.astimezone(UTC) + _STEP["hour"]).astimezone(tz)
    return datetime.combine(start.date() + DAY, time(), tzinfo=tz)


def volume(
    facts: Iterable[TicketFacts],
    by: str,
    bucket: Bucket,
    tz: ZoneInfo,
    since: datetime,
    until: datetime,
    *,
    keys: Sequence[str] = (),
    max_buckets: int = 10_000,
) -> list[VolumePoint]:
    """Tickets received in [since, until) counted per local day or hour and per value of `by`.

    Every bucket from the one holding `since` to the one holding the last instant
    before `until` appears for every key (zeros included), so charts are continuous.
    Keys are `keys` in their order (e.g. the taxonomy's labels), then any other
    value seen, sorted. Buckets start at local midnight or on the local hour.
    """
    if by not in VOLUME_KEYS:
        raise AnalyticsError(f"unknown volume key {by!r}, expected one of {VOLUME_KEYS}")
    if bucket not in _STEP:
        raise AnalyticsError(f"unknown bucket {bucket!r}, expected day or hour")
    _aware(since, "since")
    _aware(until, "until")
    if until <= since:
        raise AnalyticsError("until must be later than since")
    if (until - since) / _STEP[bucket] > max_buckets:
        raise AnalyticsError(f"at most {max_buckets} {bucket} buckets per query")
    starts = []
    start = _floor(since, bucket, tz)
    while start < until:
        starts.append(start)
        start = _next_bucket(start, bucket, tz)
    # Keyed in UTC: aware datetimes of one zone compare by wall clock, so a repeated hour would collide.
    counts: Counter[tuple[datetime, str]] = Counter()
    for f in facts:
        if since <= f.received_at < until:
            counts[(_floor(f.received_at, bucket, tz).astimezone(UTC), getattr(f, by))] += 1
    seen = sorted({key for _, key in counts} - set(keys))
    return [VolumePoint(start, key, counts[(start.astimezone(UTC), key)]) for start in starts for key in (*keys, *seen)]


# Service levels


def _target_state(deadline: datetime, done_at: datetime | None, now: datetime, due_soon: timedelta) -> str:
    if done_at is not None and done_at <= now:
        return "met" if done_at <= deadline else "breached"
    if now > deadline:
        return "breached"
    return "due_soon" if now >= deadline - due_soon else "on_track"


def _targets(f: TicketFacts) -> dict[str, tuple[datetime, datetime | None]]:
    return {
        "first_response": (f.first_response_by, f.responded_at),
        "resolution": (f.resolve_by, f.resolved_at),
    }


@dataclass(frozen=True)
class TicketSla:
    ticket_id: str
    first_response: str
    resolution: str


@dataclass(frozen=True)
class SlaStatus:
    tickets: tuple[TicketSla, ...]
    counts: Mapping[str, Mapping[str, int]]  # target -> state -> tickets, every state present


def sla_status(facts: Iterable[TicketFacts], now: datetime, due_soon: timedelta) -> SlaStatus:
    """Each ticket's first-response and resolution state at `now`.

    met: done by the deadline; breached: done late, or not done and the deadline
    has passed; due_soon: not done and the deadline is at most `due_soon` away
    (the deadline instant itself included); on_track: otherwise.
    """
    _aware(now, "now")
    if due_soon < timedelta(0):
        raise AnalyticsError("due_soon must not be negative")
    tickets = []
    counts = {target: dict.fromkeys(SLA_STATES, 0) for target in SLA_TARGETS}
    for f in facts:
        states = {target: _target_state(*pair, now, due_soon) for target, pair in _targets(f).items()}
        for target, state in states.items():
            counts[target][state] += 1
        tickets.append(TicketSla(f.ticket_id, **states))
    return SlaStatus(tuple(tickets), counts)


# Spike warnings


@dataclass(frozen=True)
class SpikeRule:
    """Thresholds of the spike rule in the module docstring."""

    alpha: float = 0.001
    min_excess: int = 5
    min_ratio: float = 1.5
    min_baseline_days: int = 7
    rate_floor: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise AnalyticsError("alpha must be within (0, 1)")
        if self.min_excess < 0 or self.min_ratio < 1:
            raise AnalyticsError("min_excess must be >= 0 and min_ratio >= 1")
        if self.rate_floor <= 0:
            raise AnalyticsError("rate_floor must be positive (a count is never certain)")


@dataclass(frozen=True)
class Alert:
    """One category well above its baseline; the fields of GET /v1/analytics/alerts."""

    category: str
    window: str
    observed: int
    expected: float
    score: float
    since: datetime


def _duration_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _tail_score(observed: int, baseline: np.ndarray, rate_floor: float, level: float) -> float:
    """-log10 P(X >= observed) under the negative binomial of the module docstring, tested at `level`."""
    # Imported here: scipy.stats takes seconds to import and only the spike rule needs it.
    from scipy.stats import nbinom, norm
    from scipy.stats import t as student_t

    n = len(baseline)
    mu = max(float(baseline.mean()), rate_floor)
    widen = (float(student_t.isf(level, n - 1)) / float(norm.isf(level))) ** 2
    variance = max(widen * float(baseline.var(ddof=1)), mu) * (1 + 1 / n)
    size, prob = mu * mu / (variance - mu), mu / variance
    log_p = float(nbinom.logsf(observed - 1, size, prob))
    if not math.isfinite(log_p):
        log_p = float(nbinom.logpmf(observed, size, prob))
    return -log_p / math.log(10)


def alerts(
    facts: Iterable[TicketFacts],
    now: datetime,
    tz: ZoneInfo,
    *,
    window: timedelta | Literal["today"] = DAY,
    baseline_days: int = 14,
    rule: SpikeRule = SpikeRule(),
    categories: Sequence[str] = (),
    history_start: datetime | None = None,
) -> list[Alert]:
    """Categories whose volume in the window ending at `now` is a spike (module docstring), highest score first.

    `categories` (e.g. the taxonomy's) are always tested, so the Bonferroni count
    does not depend on which categories happened to have tickets.
    """
    _aware(now, "now")
    span = now - _floor(now, "day", tz) if window == "today" else window
    if not isinstance(span, timedelta) or span > DAY or (window != "today" and span <= timedelta(0)):
        raise AnalyticsError("window must be 'today' or a positive duration of at most one day")
    if baseline_days < 2 or not 2 <= rule.min_baseline_days <= baseline_days:
        raise AnalyticsError("need baseline_days >= min_baseline_days >= 2 (a variance needs two days)")
    facts = list(facts)
    if history_start is None:
        history_start = min((f.received_at for f in facts), default=now)
    _aware(history_start, "history_start")
    days = [d for d in range(1, baseline_days + 1) if now - d * DAY - span >= history_start]
    if span <= timedelta(0) or len(days) < rule.min_baseline_days:
        return []
    day_us, span_us = DAY // _US, span // _US
    # Row 0 is the window, row d the same stretch d days earlier: [now - d days - span, now - d days).
    counts: defaultdict[str, np.ndarray] = defaultdict(lambda: np.zeros(baseline_days + 1, dtype=np.int64))
    for f in facts:
        age = (now - f.received_at) // _US
        if age <= 0:
            continue
        d = (age - 1) // day_us
        if d <= baseline_days and age - d * day_us <= span_us:
            counts[f.category][d] += 1
    tested = [*categories, *sorted(set(counts) - set(categories))]
    level = rule.alpha / max(len(tested), 1)
    since = (now - span).astimezone(tz)
    label = "today" if window == "today" else _duration_text(span)
    found = []
    for category in tested:
        row = counts[category]
        observed, baseline = int(row[0]), row[days]
        expected = float(baseline.mean())
        if observed < expected + rule.min_excess or observed < rule.min_ratio * expected:
            continue
        score = _tail_score(observed, baseline, rule.rate_floor, level)
        if score > -math.log10(level):
            found.append(Alert(category, label, observed, expected, score, since))
    return sorted(found, key=lambda a: -a.score)


# Monthly report


@dataclass(frozen=True)
class SlaAttainment:
    """Tickets whose deadline falls in the month; pending = not done and not yet due at `as_of`."""

    met: int
    breached: int
    pending: int

    @property
    def due(self) -> int:
        return self.met + self.breached + self.pending

    @property
    def rate(self) -> float | None:
        """Share met on time among those whose outcome is known."""
        decided = self.met + self.breached
        return self.met / decided if decided else None


@dataclass(frozen=True)
class MonthlyReport:
    year: int
    month: int
    timezone: str
    start: datetime
    end: datetime
    as_of: datetime
    total: int
    needs_review: int
    names: Mapping[str, Mapping[str, str]]  # head -> label id -> Chinese name
    order: Mapping[str, tuple[str, ...]]  # head -> label ids: the taxonomy's, then any others seen
    cross: Mapping[str, Mapping[str, int]]  # category -> issue -> tickets received in the month
    by_urgency: Mapping[str, int]
    by_department: Mapping[str, int]  # most tickets first
    first_response: SlaAttainment
    resolution: SlaAttainment
    by_category: Mapping[str, int] = field(init=False)
    by_issue: Mapping[str, int] = field(init=False)

    def __post_init__(self) -> None:
        # Derived once from the cross table so the margins can never disagree with it.
        by_category = {c: sum(row.values()) for c, row in self.cross.items()}
        by_issue = {i: sum(row[i] for row in self.cross.values()) for i in self.order["issue"]}
        object.__setattr__(self, "by_category", by_category)
        object.__setattr__(self, "by_issue", by_issue)

    def name(self, head: str, label: str) -> str:
        return self.names[head].get(label, label)


def _label_names(labels: TriageConfig | LabelNames) -> dict[str, dict[str, str]]:
    if isinstance(labels, TriageConfig):
        return {head: {x.id: x.name for x in labels.labels[head]} for head in REPORT_HEADS}
    return {head: dict(labels.get(head, {})) for head in REPORT_HEADS}


def _month_bounds(year: int, month: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    if not 1 <= month <= 12:
        raise AnalyticsError(f"month must be 1..12, got {month}")
    start = datetime(year, month, 1, tzinfo=tz)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)


def monthly_report(
    facts: Iterable[TicketFacts],
    year: int,
    month: int,
    tz: ZoneInfo,
    labels: TriageConfig | LabelNames,
    *,
    as_of: datetime | None = None,
) -> MonthlyReport:
    """Counts of tickets received in the local calendar month, and SLA attainment of deadlines due in it.

    `labels` gives the Chinese names: the TriageConfig, or {head: {id: name}}.
    `as_of` (default: now) decides which deadlines had passed when the report was made.
    """
    start, end = _month_bounds(year, month, tz)
    as_of = _aware(as_of, "as_of") if as_of is not None else datetime.now(tz)
    names = _label_names(labels)
    facts = list(facts)
    received = [f for f in facts if start <= f.received_at < end]
    order = {
        head: (*names[head], *sorted({getattr(f, head) for f in received} - set(names[head]))) for head in REPORT_HEADS
    }
    pairs = Counter((f.category, f.issue) for f in received)
    cross = {c: {i: pairs[(c, i)] for i in order["issue"]} for c in order["category"]}
    urgency = Counter(f.urgency for f in received)
    departments = Counter(f.department for f in received)
    attainment = {}
    for target in SLA_TARGETS:
        states: Counter[str] = Counter()
        for f in facts:
            deadline, done_at = _targets(f)[target]
            if start <= deadline < end:
                states[_target_state(deadline, done_at, as_of, timedelta(0))] += 1
        attainment[target] = SlaAttainment(
            met=states["met"], breached=states["breached"], pending=states["on_track"] + states["due_soon"]
        )
    return MonthlyReport(
        year=year,
        month=month,
        timezone=str(tz),
        start=start,
        end=end,
        as_of=as_of.astimezone(tz),
        total=len(received),
        needs_review=sum(f.needs_review for f in received),
        names=names,
        order=order,
        cross=cross,
        by_urgency={u: urgency[u] for u in order["urgency"]},
        by_department=dict(sorted(departments.items(), key=lambda kv: (-kv[1], kv[0]))),
        first_response=attainment["first_response"],
        resolution=attainment["resolution"],
    )


_SLA_NAMES = {"first_response": "首次响应", "resolution": "办结"}
_SLA_FIELDS = {"due": "应到期", "met": "按时", "breached": "超时", "pending": "未到期", "rate": "按时率"}


def _sla_values(a: SlaAttainment) -> dict[str, int | float | None]:
    return {"due": a.due, "met": a.met, "breached": a.breached, "pending": a.pending, "rate": a.rate}


def _csv_rows(report: MonthlyReport) -> list[tuple[str, str, str, str, str, str]]:
    rows = [("total", "", "投诉总量", "", "", str(report.total))]
    rows.append(("needs_review", "", "待人工复核", "", "", str(report.needs_review)))
    for head, counts in (("category", report.by_category), ("issue", report.by_issue), ("urgency", report.by_urgency)):
        rows += [(head, label, report.name(head, label), "", "", str(n)) for label, n in counts.items()]
    for c, row in report.cross.items():
        rows += [
            ("category_issue", c, report.name("category", c), i, report.name("issue", i), str(n))
            for i, n in row.items()
        ]
    rows += [("department", d, d, "", "", str(n)) for d, n in report.by_department.items()]
    for target in SLA_TARGETS:
        for key, value in _sla_values(getattr(report, target)).items():
            text = "" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
            rows.append((f"sla_{target}", key, f"{_SLA_NAMES[target]}{_SLA_FIELDS[key]}", "", "", text))
    return rows


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = [f"| {' | '.join(_md_cell(h) for h in header)} |", f"|{'|'.join(align)}|"]
    lines += [f"| {' | '.join(_md_cell(str(v)) for v in row)} |" for row in rows]
    return lines


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _markdown(report: MonthlyReport) -> str:
    fmt = "%Y-%m-%d %H:%M"
    issues = report.order["issue"]
    lines = [
        f"# 投诉统计月报 {report.year}年{report.month}月",
        "",
        f"统计区间：{report.start:{fmt}} 至 {report.end:{fmt}}（{report.timezone}），数据截至 {report.as_of:{fmt}}。",
        "",
        f"投诉总量 {report.total} 件，其中待人工复核 {report.needs_review} 件。",
        "",
        "## 产品类别 × 投诉原因",
        "",
    ]
    cross_rows: list[list[object]] = [
        [report.name("category", c), *row.values(), report.by_category[c]] for c, row in report.cross.items()
    ]
    cross_rows.append(["合计", *report.by_issue.values(), report.total])
    lines += _md_table(["产品类别", *(report.name("issue", i) for i in issues), "合计"], cross_rows)
    lines += ["", "## 紧急程度", ""]
    lines += _md_table(
        ["紧急程度", "件数", "占比"],
        [(f"{report.name('urgency', u)}（{u}）", n, _share(n, report.total)) for u, n in report.by_urgency.items()],
    )
    lines += ["", "## 时效达标", ""]
    sla_rows = []
    for target in SLA_TARGETS:
        a: SlaAttainment = getattr(report, target)
        sla_rows.append((_SLA_NAMES[target], a.due, a.met, a.breached, a.pending, _share(a.met, a.met + a.breached)))
    lines += _md_table(["指标", *_SLA_FIELDS.values()], sla_rows)
    lines += [
        "",
        "期限落在本月内的工单计入；按时率 = 按时 ÷（按时 + 超时），未到期且未完成的不计入。",
        "",
        "## 承办部门",
        "",
    ]
    lines += _md_table(["部门", "件数"], report.by_department.items())
    return "\n".join(lines) + "\n"


def write_monthly(report: MonthlyReport, out_dir: Path) -> tuple[Path, Path]:
    """Write complaints-YYYY-MM.csv (UTF-8 with BOM, for Excel) and complaints-YYYY-MM.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"complaints-{report.year}-{report.month:02d}"
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    with csv_path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("section", "key", "name", "key2", "name2", "value"))
        writer.writerows(_csv_rows(report))
    md_path.write_text(_markdown(report), encoding="utf-8")
    return csv_path, md_path
