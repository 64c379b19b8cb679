"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request

from serving.errors import ApiError
from serving.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=HealthOut)
async def readyz(request: Request) -> dict[str, object]:
    triager = request.app.state.triager
    if triager is None:
        raise ApiError("not_ready", "the model is not loaded yet")
    return {"status": "ready", "model": triager.model_info}
