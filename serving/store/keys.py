"""API keys in the store: only SHA-256 hashes are kept (SPEC section 8)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Engine, select

from serving.store.db import session_factory
from serving.store.tables import ApiKey, utcnow

ROLES = ("intake", "agent", "admin")


class UnknownRoleError(ValueError):
    pass


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(engine: Engine, role: str, label: str | None = None) -> str:
    """A new random key of `role`; returns it (the only time it is seen) and stores its hash."""
    if role not in ROLES:
        raise UnknownRoleError(f"role must be one of {', '.join(ROLES)}")
    key = "tk_" + secrets.token_urlsafe(24)
    with session_factory(engine)() as s, s.begin():
        s.add(ApiKey(key_hash=key_hash(key), role=role, label=label, created_at=utcnow()))
    return key


def stored_keys(engine: Engine) -> dict[str, str]:
    """hash -> role of the keys not revoked."""
    with session_factory(engine)() as s:
        rows = s.execute(select(ApiKey.key_hash, ApiKey.role).where(ApiKey.revoked_at.is_(None))).all()
        return {h: r for h, r in rows}


def revoke_key(engine: Engine, prefix: str) -> int:
    """Revoke keys whose hash starts with `prefix` (the key id shown in logs and the audit trail)."""
    if len(prefix) < 8:
        raise ValueError("give at least 8 characters of the key id")
    with session_factory(engine)() as s, s.begin():
        rows = s.scalars(select(ApiKey).where(ApiKey.key_hash.startswith(prefix), ApiKey.revoked_at.is_(None))).all()
        for row in rows:
            row.revoked_at = utcnow()
        return len(rows)
