"""Liveness, readiness (only once the model is loaded) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import HolderDep
from serving.errors import ApiError
from serving.metrics import Metrics, render
from serving.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=HealthOut)
async def readyz(holder: HolderDep) -> dict[str, object]:
    if holder.current is None:
        raise ApiError("not_ready", "the model is not loaded yet")
    return {"status": "ready", "model": holder.current.model_info}


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format: requests, latency, predictions per label, abstentions, model version."""
    collected: Metrics = request.app.state.metrics
    body, content_type = render(collected)
    return Response(body, media_type=content_type)
