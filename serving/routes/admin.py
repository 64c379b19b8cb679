"""POST /v1/admin/reload: load the promoted bundle now, without dropping requests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serving.deps import AdminDep, HolderDep
from serving.errors import ApiError
from serving.schemas import ErrorOut, ReloadOut

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reload", response_model=ReloadOut, responses={c: {"model": ErrorOut} for c in (401, 403, 409)})
async def reload(holder: HolderDep, _: AdminDep) -> dict[str, Any]:
    """This worker loads the bundle that should serve (TRIAGE_MODEL_DIR, else the registry's promoted
    one, else the default) and swaps it in; requests in flight finish with the old model. The other
    workers pick the change up by watching the registry within seconds. A bundle that fails to load
    leaves the current model serving (409 reload_failed)."""
    outcome = await holder.reload(force=True)
    if outcome.error:
        raise ApiError("reload_failed", outcome.error)
    assert outcome.current is not None
    return {"changed": outcome.changed, "model": outcome.current, "previous": outcome.previous}
