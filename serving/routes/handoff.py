"""POST /v1/handoff: a chatbot hands a customer to a person."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from serving.deps import IntakeDep, IntakeServiceDep
from serving.routes.triage import ERRORS, REPLAY_HEADER
from serving.schemas import HandoffIn, HandoffOut

router = APIRouter(prefix="/v1", tags=["handoff"])


@router.post("/handoff", response_model=HandoffOut, responses=ERRORS)
async def handoff(
    body: HandoffIn, intake: IntakeServiceDep, principal: IntakeDep, response: Response
) -> dict[str, Any]:
    """The customer's turns triaged as one case and stored as a ticket, with the note the agent reads
    first: summary, first sentence, sentiment trajectory and the signals with their turns."""
    result, created = await intake.handoff(body, principal.key_id)
    if not created:
        response.headers[REPLAY_HEADER] = "true"
    return result
