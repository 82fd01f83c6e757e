"""The versions in the store, and choosing which one every worker serves (rollback / roll forward)."""

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from app import mnist, penguins
from app.part3.routes.errors import documented
from app.part3.security import require_api_key
from app.part3.service import ServiceDep

router = APIRouter(prefix="/models", tags=["models"])


class ModelName(StrEnum):
    mnist = mnist.MODEL_NAME
    penguins = penguins.MODEL_NAME


class ModelVersions(BaseModel):
    active: int | None  # what every worker serves (within a few seconds of a change)
    serving: int | None  # what the worker that answered serves right now
    versions: list[dict[str, Any]]  # each version's metadata, oldest first, with its "live" accuracy
    # When to retrain (README): this worker's drift signals, and whether retraining is recommended, why.
    drift: dict[str, Any] = {}
    retrain_recommended: bool = False
    retrain_reasons: list[str] = []


class Activated(BaseModel):
    name: ModelName
    active: int
    metadata: dict[str, Any]


NO_LABELS = {"accuracy": None, "n_labels": 0}


@router.get("/")
def list_models(service: ServiceDep) -> dict[ModelName, ModelVersions]:
    serving = service.kept.versions()
    monitoring = service.monitoring
    answer = {}
    for name, store in service.stores.items():
        live = monitoring.live(name)
        recommended, reasons = monitoring.recommendation(name)
        answer[ModelName(name)] = ModelVersions(
            active=store.active(),
            serving=serving[name],
            versions=[
                {**version.metadata, "live": live.get(version.number, {**NO_LABELS, "window": service.settings.live_window})}
                for version in store.all_versions()
            ],
            drift=monitoring.drift(name),
            retrain_recommended=recommended,
            retrain_reasons=reasons,
        )
    return answer


@router.post(
    "/{name}/{version}/activate", dependencies=[Depends(require_api_key)], responses=documented(401, 404, 422)
)
async def activate(name: ModelName, version: Annotated[int, Path(ge=1)], service: ServiceDep) -> Activated:
    """Serve `version` from now on, on every worker: roll back to an older version or forward to a
    newer one. The next published version takes over from it."""
    activated = service.stores[name].activate(version)  # ModelNotFound -> 404
    await service.refresh()  # this worker at once; the others at their next poll
    return Activated(name=name, active=activated.number, metadata=activated.metadata)
