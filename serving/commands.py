"""Command-line work on the store: API keys, schema migrations, exporting labelled cases.

Called from triage/cli.py inside the subcommands (serving is imported only there).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from serving.store import open_store
from serving.store.keys import create_key, revoke_key
from serving.store.tables import Feedback, Ticket
from serving.store.tickets import TicketFilter, TicketStore
from triage import HEADS
from triage.config import TriageConfig, load_config
from triage.errors import UnknownLabelError
from triage.settings import Settings

DEFAULT_SOURCE = "web_form"  # the corpus schema needs a source; intake calls may leave it out


def _store(settings: Settings) -> tuple[TicketStore, TriageConfig]:
    config = load_config(settings.config_dir)
    return open_store(settings, config.deployment.timezone), config


def keys(args: argparse.Namespace, settings: Settings) -> int:
    store, _ = _store(settings)
    if args.keys_command == "create":
        key = create_key(store.engine, args.role, args.label)
        print(key)
        print(f"({args.role} key; shown once, stored hashed)", file=sys.stderr)
        return 0
    revoked = revoke_key(store.engine, args.key_id)
    print(f"revoked {revoked} key(s)", file=sys.stderr)
    return 0 if revoked else 1


def migrate(_: argparse.Namespace, settings: Settings) -> int:
    from serving.store.db import database_url, make_engine
    from serving.store.db import migrate as upgrade

    url = database_url(settings)
    revision = upgrade(make_engine(url))
    print(f"schema at revision {revision} ({url.split('@')[-1]})")
    return 0


def _day_start(value: str | None, config: TriageConfig, end: bool = False) -> datetime | None:
    if not value:
        return None
    day = date.fromisoformat(value)
    if end:
        day = date.fromordinal(day.toordinal() + 1)
    return datetime.combine(day, time(), tzinfo=config.deployment.timezone)


def case_record(ticket: Ticket, feedback: Feedback) -> dict[str, Any]:
    """A ticket with its latest feedback, in the corpus schema: labels the agent left out are
    the ones the agent saw predicted and let stand (confirmed)."""
    predicted = {h: getattr(ticket, h) for h in HEADS}
    final = {h: getattr(feedback, h) or predicted[h] for h in HEADS}
    return {
        "id": ticket.ticket_id.lower(),
        "text": ticket.text_masked,
        **final,
        "source": ticket.source or DEFAULT_SOURCE,
        "writer": f"agent:{feedback.author}",
        "brief": "feedback",
        "split": "train",
        "ticket_id": ticket.ticket_id,
        "received_at": ticket.received_at.isoformat(),
        "labelled_at": feedback.created_at.isoformat(),
        "feedback": "confirmed" if final == predicted else "corrected",
        "predicted": predicted,
    }


def export_cases(args: argparse.Namespace, settings: Settings) -> int:
    store, config = _store(settings)
    wanted = {h: getattr(args, h) for h in HEADS if getattr(args, h)}
    for head, label in wanted.items():
        if label not in config.label_ids(head):
            raise UnknownLabelError(f"unknown {head} label {label!r}")
    since, until = _day_start(args.since, config), _day_start(args.until, config, end=True)
    records = []
    for ticket, feedback in store.labelled_cases(TicketFilter()):
        if (since and feedback.created_at < since) or (until and feedback.created_at >= until):
            continue
        record = case_record(ticket, feedback)
        if any(record[h] != label for h, label in wanted.items()):
            continue
        if args.only != "all" and record["feedback"] != args.only:
            continue
        records.append(record)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out)
    store.record("cli", "export", None, cases=len(records), output=str(out))
    corrected = sum(r["feedback"] == "corrected" for r in records)
    print(f"exported {len(records)} cases ({corrected} corrected, {len(records) - corrected} confirmed) to {out}")
    return 0


def monthly(args: argparse.Namespace, settings: Settings) -> int:
    """The month's statistics for the consumer-protection team and regulators (CSV + Markdown)."""
    from serving.analytics import monthly_report, write_monthly
    from serving.store.facts import load_facts

    store, config = _store(settings)
    tz = config.deployment.timezone
    year, month = (int(part) for part in args.month.split("-"))
    report = monthly_report(load_facts(store), year, month, tz, config)
    csv_path, md_path = write_monthly(report, Path(args.out))
    store.record("cli", "monthly_report", None, month=args.month, tickets=report.total)
    print(f"{report.total} tickets in {args.month}: {csv_path} and {md_path}")
    return 0
