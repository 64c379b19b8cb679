"""The ticket store: SQLAlchemy 2 over SQLite (default) or PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from serving.store.crypto import RawTextCipher
from serving.store.db import database_url, make_engine, migrate
from serving.store.tickets import TicketStore, Webhooks
from triage.settings import Settings


def open_store(settings: Settings, tz: ZoneInfo, run_migrations: bool = True) -> TicketStore:
    """The store of `settings`, its schema brought up to date."""
    engine = make_engine(database_url(settings))
    if run_migrations:
        migrate(engine)
    cipher = (
        RawTextCipher.from_settings(settings.encryption_key, settings.data_dir) if settings.store_raw_text else None
    )
    due_soon = timedelta(minutes=settings.due_soon_minutes)
    return TicketStore(engine, tz, cipher, Webhooks(settings.webhook_urls), due_soon)
