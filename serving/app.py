"""create_app(settings): the FastAPI application."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import errors
from serving.auth import KeyRing, parse_env_keys
from serving.routes import handoff, health, tickets, triage
from serving.service import Intake
from serving.store import open_store
from serving.store.keys import stored_keys
from serving.store.tickets import TicketStore
from triage.config import load_config
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
    """The service. `triager`, `keys` and `store` may be given (tests); otherwise they come from settings."""
    app = FastAPI(title="Complaint triage", version="1", docs_url="/docs")
    if store is None:
        store = open_store(settings, load_config(settings.config_dir).deployment.timezone)
    app.state.settings = settings
    app.state.triager = triager
    app.state.store = store
    if keys is None and settings.auth:
        keys = KeyRing(parse_env_keys(settings.api_keys), lambda: stored_keys(store.engine))
    app.state.keys = keys if settings.auth else None

    async def infer(requests: list[TriageRequest]) -> list[TriageResult]:
        return await run_in_threadpool(app.state.triager.triage_batch, requests)

    app.state.intake = Intake(store, lambda: app.state.triager, infer)
    errors.install(app)
    for module in (health, triage, handoff, tickets):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
