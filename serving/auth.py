"""Who is calling: API keys with roles (SPEC section 8).

Keys come from the store (`triage keys create`, kept as SHA-256 hashes) and,
for development and tests, from TRIAGE_API_KEYS ("key1:admin,key2:intake").
A key created while the service runs is seen on its first use: an unknown
key makes the ring re-read the store, at most once per REFRESH_S.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from serving.store.keys import ROLES, key_hash

REFRESH_S = 2.0


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def parse_env_keys(spec: str) -> dict[str, str]:
    hashed = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, role = part.rpartition(":")
        if not key or role not in ROLES:
            raise ValueError(f"TRIAGE_API_KEYS entry {part[:4]}...: use KEY:ROLE with role {'|'.join(ROLES)}")
        hashed[key_hash(key)] = role
    return hashed


class KeyRing:
    def __init__(self, fixed: dict[str, str], load: Callable[[], dict[str, str]] | None = None) -> None:
        self._fixed = fixed  # hash -> role, from the environment
        self._load = load
        self._stored: dict[str, str] = load() if load else {}
        self._loaded_at = time.monotonic()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._fixed) + len(self._stored)

    def _find(self, digest: str) -> str | None:
        for known, role in (self._fixed | self._stored).items():
            if hmac.compare_digest(known, digest):
                return role
        return None

    def check(self, key: str) -> Principal | None:
        digest = key_hash(key)
        role = self._find(digest)
        if role is None and self._load is not None:
            with self._lock:
                if time.monotonic() - self._loaded_at >= REFRESH_S:
                    self._stored = self._load()
                    self._loaded_at = time.monotonic()
            role = self._find(digest)
        return None if role is None else Principal(digest[:12], role)


class RateLimiter:
    """Requests per minute per key, as a token bucket in this process (each worker counts its own
    share; behind a load balancer the limit applies per instance)."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate
