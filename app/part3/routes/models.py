"""The versions in the store, and choosing which one every worker serves (rollback / roll forward)."""

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel

from app import mnist, penguins, promotion
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
    # Each version's metadata, oldest first, with its "status": "active" (what serves), "promoted"
    # or "rejected" (stored, never served unless activated with force; its "gate" entry says why),
    # and its "live" accuracy on labelled feedback.
    versions: list[dict[str, Any]]
    # When to retrain (README): this worker's drift signals, and whether retraining is recommended, why.
    drift: dict[str, Any] = {}
    retrain_recommended: bool = False
    retrain_reasons: list[str] = []


class Activated(BaseModel):
    name: ModelName
    active: int
    forced: bool  # true when the promotion gate had rejected this version and `force` overrode it
    metadata: dict[str, Any]


def version_status(metadata: dict[str, Any], active: int | None) -> str:
    if metadata.get("version") == active:
        return "active"
    return promotion.PROMOTED if promotion.is_promoted(metadata) else promotion.REJECTED


NO_LABELS = {"accuracy": None, "n_labels": 0}


@router.get("/")
def list_models(service: ServiceDep) -> dict[ModelName, ModelVersions]:
    serving = service.kept.versions()
    monitoring = service.monitoring
    answer = {}
    for name, store in service.stores.items():
        active = store.active()
        live = monitoring.live(name)
        recommended, reasons = monitoring.recommendation(name)
        answer[ModelName(name)] = ModelVersions(
            active=active,
            serving=serving[name],
            versions=[
                {
                    **version.metadata,
                    "status": version_status(version.metadata, active),
                    "live": live.get(version.number, {**NO_LABELS, "window": service.settings.live_window}),
                }
                for version in store.all_versions()
            ],
            drift=monitoring.drift(name),
            retrain_recommended=recommended,
            retrain_reasons=reasons,
        )
    return answer


@router.post(
    "/{name}/{version}/activate", dependencies=[Depends(require_api_key)], responses=documented(401, 404, 409, 422)
)
async def activate(
    name: ModelName,
    version: Annotated[int, Path(ge=1)],
    service: ServiceDep,
    force: Annotated[bool, Query(description="serve it even though the promotion gate rejected it")] = False,
) -> Activated:
    """Serve `version` from now on, on every worker: roll back to an older version or forward to a
    newer one. The next promoted version takes over from it. A version the promotion gate rejected
    is served only with `force=true` (409 otherwise, naming the rule that refused it)."""
    store = service.stores[name]
    metadata = store.get(version).metadata  # ModelNotFound -> 404
    rejected = not promotion.is_promoted(metadata)
    if rejected and not force:
        gate = metadata["gate"]
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{name} version {version} was rejected by the promotion gate's {gate['rule']} rule "
            f"({gate['reason']}); add ?force=true to serve it anyway",
        )
    activated = store.activate(version)
    await service.refresh()  # this worker at once; the others at their next poll
    return Activated(name=name, active=activated.number, forced=rejected, metadata=activated.metadata)
