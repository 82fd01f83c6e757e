"""Liveness and readiness, for the container's HEALTHCHECK and an orchestrator's probes."""

import os

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from app.part3.service import ServiceDep

router = APIRouter(prefix="/health", tags=["health"])


class Health(BaseModel):
    status: str
    pid: int  # the worker that answered: several workers share one port
    models: dict[str, int | None] = {}
    detail: str | None = None  # why the service is not ready yet, or what it waits for while ready


@router.get("/live")
def live() -> Health:
    """The process answers (even while the models load or the first training runs)."""
    return Health(status="alive", pid=os.getpid())


@router.get("/ready", responses={503: {"model": Health, "description": "the models are not loaded yet"}})
def ready(service: ServiceDep, response: Response) -> Health:
    """200 once both models are loaded and warmed in this worker, with their versions; 503 before.
    While a version waits for its serving file (an older version serves meanwhile), `detail` says so."""
    if not service.kept.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = "5"
        return Health(
            status="starting", pid=os.getpid(), models=service.kept.versions(), detail=service.not_ready_reason()
        )
    # Ready while the store is unreachable: this worker serves what it holds (503 on every replica at
    # once would take the whole service down), and says why it cannot follow new versions.
    waiting = "; ".join(filter(None, [service.unreachable, *service.kept.waiting.values()])) or None
    return Health(status="ready", pid=os.getpid(), models=service.kept.versions(), detail=waiting)
