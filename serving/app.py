"""create_app(settings): the FastAPI application."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import errors
from serving.auth import KeyRing, load_file
from serving.routes import health, triage
from triage.pipeline import Triager
from triage.settings import Settings

log = logging.getLogger("triage.serving")
MAX_BODY_BYTES = 1 << 20


class BodyLimit:
    """Refuse bodies over the limit before reading them (413, code text_too_long)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            response = errors.error_response("text_too_long", f"request body over {self.limit} bytes")
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise errors.ApiError("text_too_long", f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


def create_app(settings: Settings, triager: Triager | None = None, keys: KeyRing | None = None) -> FastAPI:
    """The service. `triager` and `keys` may be given (tests); otherwise they come from settings."""
    app = FastAPI(title="Complaint triage", version="1", docs_url="/docs")
    app.state.settings = settings
    app.state.triager = triager
    if keys is None and settings.auth:
        keys = KeyRing.from_env(settings.api_keys).merged(load_file(settings.data_dir))
    app.state.keys = keys if settings.auth else None
    errors.install(app)
    app.include_router(health.router)
    app.include_router(triage.router)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    return app
