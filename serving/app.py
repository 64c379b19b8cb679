"""create_app(settings): the FastAPI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import errors
from serving.auth import KeyRing, RateLimiter, parse_env_keys
from serving.batcher import MicroBatcher
from serving.metrics import Metrics, MetricsMiddleware, mark_process_dead, record_result, record_webhook, set_model
from serving.models import ModelHolder
from serving.routes import admin, analytics, dashboard, handoff, health, tickets, triage
from serving.service import Intake
from serving.store import open_store
from serving.store.keys import stored_keys
from serving.store.tickets import TicketStore
from serving.webhooks import Sender
from triage.config import load_config
from triage.errors import ConfigError
from triage.pipeline import Triager, TriageRequest
from triage.result import TriageResult
from triage.settings import Settings

log = logging.getLogger("triage.serving")
MAX_BODY_BYTES = 16 << 20  # a full batch: 256 items of 5,000 characters, JSON-escaped


class BodyLimit:
    """Refuse bodies over the limit before reading them (413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        code = "batch_too_large" if scope["path"].endswith("/batch") else "text_too_long"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            response = errors.error_response(code, f"request body over {self.limit} bytes")
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise errors.ApiError(code, f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


def create_app(
    settings: Settings, triager: Triager | None = None, keys: KeyRing | None = None, store: TicketStore | None = None
) -> FastAPI:
    """The service. `triager`, `keys` and `store` may be given (tests); otherwise they come from
    settings, and the model is loaded when the application starts (its lifespan)."""
    if store is None:
        store = open_store(settings, load_config(settings.config_dir).deployment.timezone)
    if keys is None and settings.auth:
        keys = KeyRing(parse_env_keys(settings.api_keys), lambda: stored_keys(store.engine))
    holder = ModelHolder(settings, triager=triager)
    metrics = Metrics.from_env()
    batcher: MicroBatcher[TriageRequest, TriageResult] = MicroBatcher(
        lambda requests: _serving(holder).triage_batch(requests),
        max_wait_ms=settings.batch_wait_ms,
        on_batch=metrics.batch_size.observe,
    )
    sender = Sender(store, settings.webhook_secret, on_sent=lambda ok: record_webhook(metrics, ok))
    holder.on_change.append(lambda t: set_model(metrics, **t.model_info))
    if triager is not None:
        set_model(metrics, **triager.model_info)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = []
        await batcher.start()
        if holder.current is None:
            outcome = await holder.reload(force=True)
            if outcome.error:
                raise ConfigError(outcome.error)
            tasks.append(asyncio.create_task(holder.watch(settings.watch_interval_s), name="model-watch"))
        if settings.webhook_urls:
            tasks.append(asyncio.create_task(sender.run(), name="webhooks"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await batcher.aclose()
            mark_process_dead(metrics)

    def after_ticket(result: dict[str, Any]) -> None:
        record_result(metrics, result)
        if settings.webhook_urls and store.webhooks.event_for(result):
            sender.notify()

    app = FastAPI(title="Complaint triage", version="1", docs_url="/docs", lifespan=lifespan)
    app.state.settings = settings
    app.state.holder = holder
    app.state.store = store
    app.state.keys = keys if settings.auth else None
    app.state.metrics = metrics
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None
    app.state.intake = Intake(store, lambda: _serving(holder), batcher.submit_many, after_ticket)
    errors.install(app)
    for module in (health, triage, handoff, tickets, admin, analytics, dashboard):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _serving(holder: ModelHolder) -> Triager:
    triager = holder.current
    if triager is None:
        raise errors.ApiError("not_ready", "the model is not loaded yet")
    return triager
