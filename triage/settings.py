"""One Settings object, read once from the environment (nothing happens at import)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T", int, float)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "triage"


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _number(env: Mapping[str, str], name: str, default: T, kind: Callable[[str], T]) -> T:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    model_dir: Path | None
    config_dir: Path | None
    database_url: str | None
    api_keys: str
    auth: bool
    store_raw_text: bool
    encryption_key: str | None = None
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = ""
    cors_origins: tuple[str, ...] = ()
    rate_limit_per_minute: int = 0
    batch_wait_ms: float = 2.0
    watch_interval_s: float = 2.0
    due_soon_minutes: int = 120

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        model_dir = env.get("TRIAGE_MODEL_DIR")
        config_dir = env.get("TRIAGE_CONFIG_DIR")
        return cls(
            data_dir=Path(env.get("TRIAGE_DATA_DIR") or default_data_dir()),
            model_dir=Path(model_dir) if model_dir else None,
            config_dir=Path(config_dir) if config_dir else None,
            database_url=env.get("DATABASE_URL") or None,
            api_keys=env.get("TRIAGE_API_KEYS", ""),
            auth=env.get("TRIAGE_AUTH", "on").lower() not in ("off", "0", "false", "no"),
            store_raw_text=env.get("TRIAGE_STORE_RAW_TEXT", "").lower() in ("1", "true", "yes", "on"),
            encryption_key=env.get("TRIAGE_ENCRYPTION_KEY") or None,
            webhook_urls=_split(env.get("TRIAGE_WEBHOOK_URLS", "")),
            webhook_secret=env.get("TRIAGE_WEBHOOK_SECRET", ""),
            cors_origins=_split(env.get("TRIAGE_CORS_ORIGINS", "")),
            rate_limit_per_minute=_number(env, "TRIAGE_RATE_LIMIT", 0, int),
            batch_wait_ms=_number(env, "TRIAGE_BATCH_WAIT_MS", 2.0, float),
            watch_interval_s=_number(env, "TRIAGE_WATCH_INTERVAL_S", 2.0, float),
            due_soon_minutes=_number(env, "TRIAGE_DUE_SOON_MINUTES", 120, int),
        )

    @property
    def default_bundle_dir(self) -> Path:
        return self.data_dir / "bundles" / "default"

    @property
    def base_model_dir(self) -> Path:
        return self.data_dir / "base" / "e5-small-zh"

    @property
    def registry_dir(self) -> Path:
        return self.data_dir / "registry"

    def model_path(self) -> Path:
        """Which bundle serves: TRIAGE_MODEL_DIR, else the registry's promoted one, else the default."""
        if self.model_dir is not None:
            return self.model_dir
        pointer = self.registry_dir / "CURRENT"
        if pointer.is_file():
            promoted = self.registry_dir / pointer.read_text(encoding="utf-8").strip()
            if promoted.is_dir():
                return promoted
        return self.default_bundle_dir
