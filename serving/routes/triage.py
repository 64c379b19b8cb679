"""POST /v1/triage and /v1/triage/batch: complaints in, triaged tickets out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from serving.deps import ConfigDep, IntakeDep, IntakeServiceDep
from serving.errors import ApiError
from serving.schemas import BatchIn, BatchOut, ErrorOut, TriageIn, TriageOut

router = APIRouter(prefix="/v1", tags=["triage"])
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 403, 413, 422, 429)}
REPLAY_HEADER = "Idempotent-Replay"


@router.post("/triage", response_model=TriageOut, responses=ERRORS)
async def triage(body: TriageIn, intake: IntakeServiceDep, principal: IntakeDep, response: Response) -> dict[str, Any]:
    """Triage one complaint and open its ticket: labels, urgency with its reasons, route, deadlines
    and a draft. A repeated `idempotency_key` returns the original ticket (header Idempotent-Replay: true)."""
    [(result, created)] = await intake.triage([body], principal.key_id)
    if not created:
        response.headers[REPLAY_HEADER] = "true"
    return result


@router.post("/triage/batch", response_model=BatchOut, responses=ERRORS)
async def triage_batch(
    body: BatchIn, intake: IntakeServiceDep, config: ConfigDep, principal: IntakeDep
) -> dict[str, Any]:
    """Up to the configured batch size (256 by default); one bad item fails the whole batch (422 naming it)."""
    limit = config.deployment.batch_max_items
    if len(body.items) > limit:
        raise ApiError("batch_too_large", f"{len(body.items)} items; the limit is {limit}")
    return {"results": [result for result, _ in await intake.triage(body.items, principal.key_id)]}
