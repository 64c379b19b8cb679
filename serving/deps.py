"""Dependencies shared by the routes, as Annotated aliases."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from serving.auth import KeyRing, Principal, RateLimiter
from serving.errors import ApiError
from serving.models import ModelHolder
from serving.service import Intake
from serving.store.tickets import TicketStore
from triage.config import TriageConfig
from triage.pipeline import Triager


def get_holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


def get_triager(holder: Annotated[ModelHolder, Depends(get_holder)]) -> Triager:
    triager = holder.current
    if triager is None:
        raise ApiError("not_ready", "the model is not loaded yet")
    return triager


def get_config(triager: Annotated[Triager, Depends(get_triager)]) -> TriageConfig:
    return triager.config


def get_store(request: Request) -> TicketStore:
    store: TicketStore = request.app.state.store
    return store


def get_intake(request: Request, _: Annotated[Triager, Depends(get_triager)]) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


def _principal(request: Request) -> Principal:
    keys: KeyRing | None = request.app.state.keys
    if keys is None:  # authentication disabled (TRIAGE_AUTH=off, loopback only)
        return Principal("anonymous", "admin")
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError("unauthorized", "missing or malformed Authorization: Bearer KEY header")
    principal = keys.check(key.strip())
    if principal is None:
        raise ApiError("unauthorized", "unknown API key")
    limiter: RateLimiter | None = request.app.state.limiter
    wait = limiter.take(principal.key_id) if limiter is not None else 0.0
    if wait:
        retry = str(math.ceil(wait))
        raise ApiError("rate_limited", f"too many requests for this key; retry in {retry} s", {"Retry-After": retry})
    request.state.principal = principal
    return principal


def require(role: str) -> Callable[[Principal], Principal]:
    def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if not principal.allows(role):
            raise ApiError("forbidden", f"this call needs the {role} role")
        return principal

    return check


HolderDep = Annotated[ModelHolder, Depends(get_holder)]
TriagerDep = Annotated[Triager, Depends(get_triager)]
ConfigDep = Annotated[TriageConfig, Depends(get_config)]
StoreDep = Annotated[TicketStore, Depends(get_store)]
IntakeServiceDep = Annotated[Intake, Depends(get_intake)]
IntakeDep = Annotated[Principal, Depends(require("intake"))]
AgentDep = Annotated[Principal, Depends(require("agent"))]
AdminDep = Annotated[Principal, Depends(require("admin"))]
