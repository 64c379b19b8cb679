"""API keys with roles (SPEC section 8). Keys are kept only as SHA-256 hashes.

Sources: TRIAGE_API_KEYS ("key1:admin,key2:intake") for development and
tests, and the key file in the data directory. With neither, the first start
creates an admin key, prints it once and stores only its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ROLES = ("intake", "agent", "admin")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class KeyRing:
    def __init__(self, hashed: dict[str, str]) -> None:
        self._hashed = hashed  # hash -> role

    def merged(self, hashed: dict[str, str]) -> KeyRing:
        return KeyRing(self._hashed | hashed)

    def __len__(self) -> int:
        return len(self._hashed)

    def check(self, key: str) -> Principal | None:
        digest = key_hash(key)
        for known, role in self._hashed.items():
            if hmac.compare_digest(known, digest):
                return Principal(known[:12], role)
        return None

    @classmethod
    def from_env(cls, spec: str) -> KeyRing:
        hashed = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, role = part.rpartition(":")
            if not key or role not in ROLES:
                raise ValueError(f"TRIAGE_API_KEYS entry {part[:4]}...: use KEY:ROLE with role {'|'.join(ROLES)}")
            hashed[key_hash(key)] = role
        return cls(hashed)


def key_file(data_dir: Path) -> Path:
    return data_dir / "api_keys.json"


def load_file(data_dir: Path) -> dict[str, str]:
    path = key_file(data_dir)
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def create_key(data_dir: Path, role: str) -> str:
    """A new random key of `role`; only its hash is written."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    key = "tk_" + secrets.token_urlsafe(24)
    stored = load_file(data_dir) | {key_hash(key): role}
    data_dir.mkdir(parents=True, exist_ok=True)
    path = key_file(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stored, indent=1), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return key
