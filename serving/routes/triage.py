"""POST /v1/triage."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from serving.deps import IntakeDep, TriagerDep
from serving.schemas import ErrorOut, TriageIn, TriageOut

router = APIRouter(prefix="/v1", tags=["triage"])
ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 413, 422)}


@router.post("/triage", response_model=TriageOut, responses=ERRORS)  # type: ignore[arg-type]
async def triage(body: TriageIn, triager: TriagerDep, _: IntakeDep) -> dict[str, object]:
    """Triage one complaint: labels, urgency with its reasons, route, deadlines and a draft."""
    result = await run_in_threadpool(triager.triage, body.text, body.channel, body.received_at)
    return result.to_dict()
