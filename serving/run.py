"""`triage serve`: uvicorn with one application per worker process."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys

from fastapi import FastAPI

from serving.app import create_app
from serving.auth import parse_env_keys
from serving.logs import log_config
from serving.metrics import MULTIPROC_ENV, reset_multiprocess_dir
from serving.store import open_store
from serving.store.keys import create_key, stored_keys
from triage.config import load_config
from triage.runtime import load_triager
from triage.settings import Settings

log = logging.getLogger("triage.serving")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment; the model loads at startup."""
    return create_app(Settings.from_env())


def serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import uvicorn

    if not settings.auth and not is_loopback(host):
        print("triage: TRIAGE_AUTH=off is refused on a non-loopback address", file=sys.stderr)
        return 2
    load_triager(settings)  # fail fast, before any worker starts, on a missing or inconsistent bundle
    # Migrations run once here, before the workers start (they find the schema up to date).
    store = open_store(settings, load_config(settings.config_dir).deployment.timezone)
    if settings.auth and not parse_env_keys(settings.api_keys) and not stored_keys(store.engine):
        key = create_key(store.engine, "admin", label="first start")
        print(f"Created the first admin API key (shown once, stored hashed):\n  {key}", flush=True)
    store.engine.dispose()
    # One onnxruntime thread per worker: measured faster under concurrent load than several
    # threads competing with the event loop (bench/reports/load*.md); scale with --workers.
    os.environ.setdefault("TRIAGE_ORT_THREADS", "1")
    if workers > 1:
        # Each worker writes its metrics to files here; a scrape of any worker merges them all.
        directory = settings.data_dir / "metrics"
        reset_multiprocess_dir(directory)
        os.environ[MULTIPROC_ENV] = str(directory)
    uvicorn.run(
        "serving.run:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=log_config(),
    )
    return 0
