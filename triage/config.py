"""The versioned data files under triage/data, loaded and validated once.

Everything a bank may change without touching code lives there: the taxonomy,
risk signals and their effects, routing, service levels, review thresholds,
acknowledgement templates and deployment settings.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from triage import HEADS
from triage.errors import ConfigError

DEFAULT_DATA_DIR = Path(__file__).parent / "data"
URGENCIES = ("P1", "P2", "P3", "P4")
PLACEHOLDERS = frozenset({"signature", "bank", "hotline", "ticket", "contact_time", "restatement", "fraud_advice"})
CHANNELS = ("sms", "app", "chat", "email")
TONES = ("urgent", "angry", "standard", "inquiry", "positive")
_PLACEHOLDER = re.compile(r"\{([a-z_]*)\}")
_DURATION = re.compile(r"^(\d+)([mhd])$")


@dataclass(frozen=True)
class Label:
    id: str
    name: str
    description: str


@dataclass(frozen=True)
class Escalation:
    to: str
    with_any: tuple[str, ...] = ()
    deadline_within_days: int | None = None


@dataclass(frozen=True)
class SignalRule:
    type: str
    patterns: tuple[re.Pattern[str], ...]
    min_urgency: str | None
    escalate: tuple[Escalation, ...] = ()
    min_value_yuan: float | None = None
    store_window_days: int | None = None
    store_min_tickets: int | None = None


@dataclass(frozen=True)
class HeadRule:
    head: str
    label: str
    min_urgency: str


@dataclass(frozen=True)
class Override:
    issue: str
    department: str
    cc: tuple[str, ...] = ()


@dataclass(frozen=True)
class CopyRule:
    signals: tuple[str, ...]
    urgency: tuple[str, ...]
    cc: tuple[str, ...]


@dataclass(frozen=True)
class Routing:
    by_category: dict[str, str]
    overrides: tuple[Override, ...]
    copies: tuple[CopyRule, ...]

    def departments(self) -> set[str]:
        names = set(self.by_category.values())
        for o in self.overrides:
            names.add(o.department)
            names.update(o.cc)
        for c in self.copies:
            names.update(c.cc)
        return names


@dataclass(frozen=True)
class ServiceLevel:
    first_response: timedelta
    resolve: timedelta


@dataclass(frozen=True)
class Templates:
    limits: dict[str, int]
    levels: tuple[str, ...]
    no_amount_levels: tuple[str, ...]
    product: dict[str, str]
    problem: dict[str, str]
    fraud_advice: dict[str, str]
    variants: dict[str, dict[str, tuple[str, ...]]]
    banned: tuple[str, ...]


@dataclass(frozen=True)
class HandoffConfig:
    bot_actions: tuple[tuple[re.Pattern[str], str], ...]
    first_sentence: dict[str, str]
    fraud_sentence: str


@dataclass(frozen=True)
class Deployment:
    bank_name: str
    hotline: str
    sms_signature: str
    timezone: ZoneInfo
    max_text_chars: int
    batch_max_items: int

    def local(self, moment: datetime) -> datetime:
        """A time without a zone is the bank's local time."""
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=self.timezone)


@dataclass(frozen=True)
class TriageConfig:
    """All data files, validated against each other."""

    version: str
    labels: dict[str, tuple[Label, ...]]
    signals: dict[str, SignalRule]
    head_rules: tuple[HeadRule, ...]
    routing: Routing
    sla: dict[str, ServiceLevel]
    regulatory_cap: timedelta
    fallback_thresholds: dict[str, float]
    threshold_overrides: dict[str, float]
    templates: Templates
    handoff: HandoffConfig
    deployment: Deployment
    # Per head, labels the model names once their probability reaches the value, ahead of the top label.
    decision_thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    source_dir: Path = field(default=DEFAULT_DATA_DIR, compare=False)

    def label_ids(self, head: str) -> tuple[str, ...]:
        return tuple(label.id for label in self.labels[head])

    def label_name(self, head: str, label_id: str) -> str:
        for label in self.labels[head]:
            if label.id == label_id:
                return label.name
        raise ConfigError(f"unknown {head} label {label_id!r}")

    def check_model_labels(self, model_labels: dict[str, list[str]] | dict[str, tuple[str, ...]]) -> None:
        """Refuse a model whose label sets differ from the taxonomy (SPEC section 1)."""
        for head in HEADS:
            expected = set(self.label_ids(head))
            got = set(model_labels.get(head, ()))
            if got != expected:
                missing = sorted(expected - got)
                extra = sorted(got - expected)
                raise ConfigError(
                    f"model labels for {head!r} disagree with the taxonomy: missing {missing}, unknown {extra}"
                )


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"data file missing: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: {exc}") from exc


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise ConfigError(f"bad duration {text!r}: use e.g. 15m, 4h, 3d")
    amount, unit = int(match.group(1)), match.group(2)
    return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]


def _labels(raw: dict[str, Any]) -> dict[str, tuple[Label, ...]]:
    labels: dict[str, tuple[Label, ...]] = {}
    for head in HEADS:
        entries = raw.get(head)
        if not entries:
            raise ConfigError(f"taxonomy.toml: no labels for head {head!r}")
        items = tuple(Label(e["id"], e["name"], e.get("description", "")) for e in entries)
        ids = [label.id for label in items]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"taxonomy.toml: duplicate label ids in {head!r}")
        labels[head] = items
    if tuple(label.id for label in labels["urgency"]) != URGENCIES:
        raise ConfigError(f"taxonomy.toml: urgency labels must be {URGENCIES}")
    return labels


def _check_urgency(value: str, where: str) -> str:
    if value not in URGENCIES:
        raise ConfigError(f"{where}: unknown urgency {value!r}")
    return value


def _signals(raw: dict[str, Any], labels: dict[str, tuple[Label, ...]]) -> dict[str, SignalRule]:
    rules: dict[str, SignalRule] = {}
    names = set(raw.get("signal", {}))
    for name, spec in raw.get("signal", {}).items():
        where = f"signals.toml [signal.{name}]"
        try:
            patterns = tuple(re.compile(p) for p in spec.get("patterns", []))
        except re.error as exc:
            raise ConfigError(f"{where}: bad pattern: {exc}") from exc
        escalations = []
        for e in spec.get("escalate", []):
            for ref in e.get("with_any", []):
                head, _, label = ref.partition(":")
                if label:
                    if head not in labels or label not in {x.id for x in labels[head]}:
                        raise ConfigError(f"{where}: unknown label reference {ref!r}")
                elif ref not in names:
                    raise ConfigError(f"{where}: unknown signal reference {ref!r}")
            escalations.append(
                Escalation(
                    to=_check_urgency(e["to"], where),
                    with_any=tuple(e.get("with_any", [])),
                    deadline_within_days=e.get("deadline_within_days"),
                )
            )
        min_urgency = spec.get("min_urgency")
        rules[name] = SignalRule(
            type=name,
            patterns=patterns,
            min_urgency=_check_urgency(min_urgency, where) if min_urgency else None,
            escalate=tuple(escalations),
            min_value_yuan=spec.get("min_value_yuan"),
            store_window_days=spec.get("store_window_days"),
            store_min_tickets=spec.get("store_min_tickets"),
        )
    for required in ("amount", "deadline", "repeat"):
        if required not in rules:
            raise ConfigError(f"signals.toml: signal {required!r} must be defined")
    return rules


def _head_rules(raw: dict[str, Any], labels: dict[str, tuple[Label, ...]]) -> tuple[HeadRule, ...]:
    out = []
    for r in raw.get("head_rule", []):
        if r["head"] not in labels or r["label"] not in {x.id for x in labels[r["head"]]}:
            raise ConfigError(f"signals.toml head_rule: unknown label {r['head']}:{r['label']}")
        out.append(HeadRule(r["head"], r["label"], _check_urgency(r["min_urgency"], "signals.toml head_rule")))
    return tuple(out)


def _routing(raw: dict[str, Any], labels: dict[str, tuple[Label, ...]], signals: set[str]) -> Routing:
    categories = {x.id for x in labels["category"]}
    issues = {x.id for x in labels["issue"]}
    by_category = dict(raw.get("category", {}))
    unknown = set(by_category) - categories
    if unknown:
        raise ConfigError(f"routing.toml: unknown category label(s) {sorted(unknown)}")
    missing = categories - set(by_category)
    if missing:
        raise ConfigError(f"routing.toml: no department for category label(s) {sorted(missing)}")
    overrides = []
    for o in raw.get("override", []):
        if o["issue"] not in issues:
            raise ConfigError(f"routing.toml: unknown issue label {o['issue']!r} in override")
        overrides.append(Override(o["issue"], o["department"], tuple(o.get("cc", []))))
    copies = []
    for c in raw.get("copy", []):
        bad = set(c.get("signals", [])) - signals
        if bad:
            raise ConfigError(f"routing.toml: unknown signal(s) {sorted(bad)} in copy rule")
        for u in c.get("urgency", []):
            _check_urgency(u, "routing.toml copy rule")
        copies.append(CopyRule(tuple(c.get("signals", [])), tuple(c.get("urgency", [])), tuple(c["cc"])))
    return Routing(by_category, tuple(overrides), tuple(copies))


def _sla(raw: dict[str, Any]) -> tuple[dict[str, ServiceLevel], timedelta]:
    cap = timedelta(days=int(raw.get("regulatory_cap_days", 15)))
    levels = {}
    for urgency in URGENCIES:
        spec = raw.get("levels", {}).get(urgency)
        if spec is None:
            raise ConfigError(f"sla.toml: no service level for {urgency}")
        level = ServiceLevel(parse_duration(spec["first_response"]), parse_duration(spec["resolve"]))
        if level.resolve > cap or level.first_response > cap:
            raise ConfigError(f"sla.toml: {urgency} target exceeds the regulatory cap of {cap.days} days")
        if level.first_response > level.resolve:
            raise ConfigError(f"sla.toml: {urgency} first response is later than resolution")
        levels[urgency] = level
    return levels, cap


def _thresholds(raw: dict[str, Any], section: str) -> dict[str, float]:
    values = dict(raw.get(section, {}))
    for head, value in values.items():
        if head not in HEADS:
            raise ConfigError(f"thresholds.toml [{section}]: unknown head {head!r}")
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"thresholds.toml [{section}]: {head} must be within 0..1")
    return {h: float(v) for h, v in values.items()}


def _decision_thresholds(raw: dict[str, Any], labels: dict[str, tuple[Label, ...]]) -> dict[str, dict[str, float]]:
    """`[decision.<head>] <label> = p`, kept in taxonomy order so that P1 is looked at before P2."""
    out: dict[str, dict[str, float]] = {}
    for head, values in dict(raw.get("decision", {})).items():
        if head not in HEADS:
            raise ConfigError(f"thresholds.toml [decision]: unknown head {head!r}")
        if not isinstance(values, dict):
            raise ConfigError(f"thresholds.toml [decision.{head}]: expected label = probability pairs")
        known = [label.id for label in labels[head]]
        for label, value in values.items():
            if label not in known:
                raise ConfigError(f"thresholds.toml [decision.{head}]: unknown label {label!r}")
            if not isinstance(value, int | float) or not 0.0 < float(value) <= 1.0:
                raise ConfigError(f"thresholds.toml [decision.{head}]: {label} must be within (0, 1]")
        out[head] = {label: float(values[label]) for label in known if label in values}
    return out


def _check_placeholders(text: str, where: str, allowed: frozenset[str]) -> None:
    where = where if where.startswith("handoff") else f"templates.toml {where}"
    for name in _PLACEHOLDER.findall(text):
        if name not in allowed:
            raise ConfigError(f"{where}: placeholder {{{name}}} does not exist")


def _templates(raw: dict[str, Any], labels: dict[str, tuple[Label, ...]]) -> Templates:
    restatement = raw.get("restatement", {})
    product = dict(restatement.get("product", {}))
    problem = dict(restatement.get("problem", {}))
    for head, mapping in (("category", product), ("issue", problem)):
        ids = {x.id for x in labels[head]}
        if set(mapping) != ids:
            raise ConfigError(
                f"templates.toml [restatement.{'product' if head == 'category' else 'problem'}]: "
                f"must name exactly the {head} labels (missing {sorted(ids - set(mapping))}, "
                f"unknown {sorted(set(mapping) - ids)})"
            )
    level_names = frozenset({"product", "problem", "amount"})
    levels = tuple(restatement.get("levels", []))
    no_amount = tuple(restatement.get("no_amount_levels", []))
    for i, level in enumerate(levels + no_amount):
        _check_placeholders(level, f"restatement level {i}", level_names)
    variants: dict[str, dict[str, tuple[str, ...]]] = {}
    for channel in CHANNELS:
        section = raw.get(channel)
        if not section:
            raise ConfigError(f"templates.toml: no templates for channel {channel!r}")
        variants[channel] = {}
        for tone in TONES:
            texts = tuple(section.get(tone, []))
            if not texts:
                raise ConfigError(f"templates.toml: no {channel}.{tone} template")
            for t in texts:
                _check_placeholders(t, f"[{channel}].{tone}", PLACEHOLDERS)
                if "{ticket}" not in t or "{contact_time}" not in t:
                    raise ConfigError(f"templates.toml [{channel}].{tone}: ticket and contact time are required")
            variants[channel][tone] = texts
    fraud = dict(raw.get("fraud_advice", {}))
    for channel in CHANNELS:
        if channel not in fraud:
            raise ConfigError(f"templates.toml [fraud_advice]: missing channel {channel!r}")
        _check_placeholders(fraud[channel], f"[fraud_advice].{channel}", PLACEHOLDERS)
    limits = {c: int(raw.get("limits", {}).get(c, 0)) for c in CHANNELS}
    if any(v <= 0 for v in limits.values()):
        raise ConfigError("templates.toml [limits]: every channel needs a positive limit")
    return Templates(
        limits=limits,
        levels=levels,
        no_amount_levels=no_amount,
        product=product,
        problem=problem,
        fraud_advice=fraud,
        variants=variants,
        banned=tuple(raw.get("checks", {}).get("banned", [])),
    )


def _handoff(raw: dict[str, Any]) -> HandoffConfig:
    actions = []
    for a in raw.get("bot_action", []):
        try:
            actions.append((re.compile(a["pattern"]), a["text"]))
        except re.error as exc:
            raise ConfigError(f"handoff.toml: bad pattern {a.get('pattern')!r}: {exc}") from exc
    sentences = dict(raw.get("first_sentence", {}))
    for tone in TONES:
        if tone not in sentences:
            raise ConfigError(f"handoff.toml [first_sentence]: missing tone {tone!r}")
        _check_placeholders(sentences[tone], f"handoff first_sentence.{tone}", frozenset({"restatement"}))
    return HandoffConfig(tuple(actions), {t: sentences[t] for t in TONES}, sentences.get("fraud", ""))


def _deployment(raw: dict[str, Any]) -> Deployment:
    try:
        tz = ZoneInfo(raw.get("timezone", "Asia/Shanghai"))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"deployment.toml: unknown time zone {raw.get('timezone')!r}") from exc
    for key in ("bank_name", "hotline", "sms_signature"):
        if not str(raw.get(key, "")).strip():
            raise ConfigError(f"deployment.toml: {key} is required")
    return Deployment(
        bank_name=raw["bank_name"],
        hotline=raw["hotline"],
        sms_signature=raw["sms_signature"],
        timezone=tz,
        max_text_chars=int(raw.get("max_text_chars", 5000)),
        batch_max_items=int(raw.get("batch_max_items", 256)),
    )


def load_config(data_dir: Path | None = None) -> TriageConfig:
    """Read and cross-validate every data file; raises ConfigError with a clear message."""
    data_dir = data_dir or DEFAULT_DATA_DIR
    taxonomy = _read(data_dir / "taxonomy.toml")
    labels = _labels(taxonomy)
    signals_raw = _read(data_dir / "signals.toml")
    signals = _signals(signals_raw, labels)
    sla, cap = _sla(_read(data_dir / "sla.toml"))
    thresholds = _read(data_dir / "thresholds.toml")
    config = TriageConfig(
        version=str(taxonomy.get("version", "unversioned")),
        labels=labels,
        signals=signals,
        head_rules=_head_rules(signals_raw, labels),
        routing=_routing(_read(data_dir / "routing.toml"), labels, set(signals)),
        sla=sla,
        regulatory_cap=cap,
        fallback_thresholds=_thresholds(thresholds, "fallback"),
        threshold_overrides=_thresholds(thresholds, "override"),
        templates=_templates(_read(data_dir / "templates.toml"), labels),
        handoff=_handoff(_read(data_dir / "handoff.toml")),
        deployment=_deployment(_read(data_dir / "deployment.toml")),
        decision_thresholds=_decision_thresholds(thresholds, labels),
        source_dir=data_dir,
    )
    # Imported here: drafts need the config type, and the fit check needs both.
    from triage.ack import check_templates_fit

    check_templates_fit(config)
    return config
