"""An operator decides about a model's challenger instead of waiting for its labels (README: "Shadow
scoring"): promote it (it serves on every worker, pinned active) or drop it (it stops answering in
shadow). Both write its metadata's "shadow" entry, once; behind the API key, like activate."""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.part3.routes.errors import documented
from app.part3.routes.models import model_named
from app.part3.security import require_api_key
from app.part3.service import ServiceDep
from app.part3.shadow import NoChallenger
from app.store import DROPPED, PROMOTED

router = APIRouter(prefix="/models", tags=["models"])


class Decided(BaseModel):
    name: str
    version: int
    outcome: str  # "promoted" (now active) or "dropped"
    active: int | None  # what every worker serves from now on (within poll_interval)
    metadata: dict[str, Any]


async def decide(name: str, service: ServiceDep, outcome: str) -> Decided:
    model_named(name, service)  # 404 naming the models
    try:
        version = await run_in_threadpool(service.shadow.decide, name, outcome, "an operator")
    except NoChallenger as error:
        raise HTTPException(409, f"{error}; GET /models/ lists the versions and their status") from None
    await service.refresh()  # this worker at once; the others at their next poll
    return Decided(
        name=name,
        version=version.number,
        outcome=outcome,
        active=service.stores[name].active(),
        metadata=version.metadata,
    )


@router.post("/{name}/challenger/promote", dependencies=[Depends(require_api_key)], responses=documented(401, 404, 409))
async def promote_challenger(name: str, service: ServiceDep) -> Decided:
    """Serve the challenger from now on, on every worker, whatever its labels say so far (409 when the
    model has none in shadow)."""
    return await decide(name, service, PROMOTED)


@router.post("/{name}/challenger/drop", dependencies=[Depends(require_api_key)], responses=documented(401, 404, 409))
async def drop_challenger(name: str, service: ServiceDep) -> Decided:
    """Stop the challenger answering in shadow; it stays stored, never served unless activated with force
    (409 when the model has none in shadow)."""
    return await decide(name, service, DROPPED)
