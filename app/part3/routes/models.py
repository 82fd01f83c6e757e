"""The models and their versions, for any registered model: what is stored and why, which version every
worker serves (rollback / roll forward), and training jobs of a model with the parameters it declares."""

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from app import promotion
from app.modelkit import Model
from app.part3.feedback_backends import FEEDBACK_ERRORS
from app.part3.routes.errors import documented
from app.part3.routes.train import JobAccepted, accepted
from app.part3.security import require_api_key
from app.part3.service import Service, ServiceDep
from app.store import DROPPED, in_shadow

router = APIRouter(prefix="/models", tags=["models"])
MAX_EXAMPLES = 100_000


class ModelVersions(BaseModel):
    description: str  # what the model answers
    classes: list[str]
    input: dict[str, Any]  # its request tensor: name, datatype, shape (-1: any)
    trainable: bool  # false: serve-only, trained elsewhere and published as an ONNX file
    parameters: dict[str, Any] | None  # the JSON schema of a training job's parameters
    active: int | None  # what every worker serves (within a few seconds of a change)
    serving: int | None  # what the worker that answered serves right now
    # Each version's metadata, oldest first, with its "status": "active" (what serves), "promoted"
    # or "rejected" (stored, never served unless activated with force; its "gate" entry says why, with
    # its figures on the frozen and the live holdout), "challenger" (in shadow) or "dropped" (its
    # "shadow" entry says why), and its "live" accuracy on labelled feedback.
    versions: list[dict[str, Any]]
    # The version answering copies of live requests in shadow, if any (README: "Shadow scoring"): its
    # agreement with the champion, both accuracies on the labelled requests it answered, McNemar's
    # test and what it waits for.
    challenger: dict[str, Any] | None = None
    # When to retrain (README): this worker's drift signals, and whether retraining is recommended, why.
    drift: dict[str, Any] = {}
    retrain_recommended: bool = False
    retrain_reasons: list[str] = []
    # What the retrain policy does now and why ("state": off, idle, training, waiting, stopped, ready).
    retrain_policy: dict[str, str] = {}
    # The audit of the labelled feedback against the serving version: labels that contradict what it
    # knows for sure are flagged, and kept out of training and of the live holdout (app/label_audit.py).
    labels: dict[str, Any] = {}


class Activated(BaseModel):
    name: str
    active: int
    forced: bool  # true when the promotion gate had rejected this version and `force` overrode it
    metadata: dict[str, Any]


class TrainingExamples(BaseModel):
    """Labelled examples for a job: rows in the model's input form (GET /models/ gives its shape) and
    each row's class name."""

    inputs: list[Any] = Field(min_length=1, max_length=MAX_EXAMPLES)
    labels: list[str] = Field(min_length=1, max_length=MAX_EXAMPLES)


class TrainingRequest(BaseModel):
    kind: Literal["retrain", "fine-tune"] = Field(
        description="retrain: from scratch on the model's base data (plus `examples`); fine-tune: from the "
        "version that serves, on `examples` or on the labelled feedback"
    )
    parameters: dict[str, Any] = Field(default={}, description="as the model declares them (GET /models/)")
    examples: TrainingExamples | None = None
    feedback: bool = Field(default=False, description="train on the labelled feedback that came with its input")


def model_named(name: str, service: Service) -> Model:
    model = service.kept.models.get(name)
    if model is None:
        raise HTTPException(404, f"no model {name!r}; the models are {', '.join(service.kept.models)}")
    return model


def version_status(metadata: dict[str, Any], active: int | None) -> str:
    if metadata.get("version") == active:
        return "active"
    if promotion.is_promoted(metadata):
        return promotion.PROMOTED
    if in_shadow(metadata):
        return promotion.CHALLENGER
    return DROPPED if promotion.is_challenger(metadata) else promotion.REJECTED


NO_LABELS = {"accuracy": None, "n_labels": 0}


@router.get("/")
def list_models(service: ServiceDep) -> dict[str, ModelVersions]:
    serving = service.kept.versions()
    answer = {}
    for name, store in service.stores.items():
        model = service.kept.models[name]
        active = store.active()
        try:
            figures = feedback_figures(service, name)
        except FEEDBACK_ERRORS as error:  # /models/ keeps answering without the feedback store, as without the queue
            figures = unknown_figures(service, error)
        live = figures.pop("live")
        answer[name] = ModelVersions(
            description=model.description,
            classes=list(model.classes),
            input=model.input.describe(),
            trainable=model.trainable,
            parameters=model.parameters.model_json_schema() if model.parameters else None,
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
            drift=service.monitoring.drift(name),
            **figures,
        )
    return answer


def feedback_figures(service: Service, name: str) -> dict[str, Any]:
    """What /models/ reads from the labelled feedback (and the shadow answers beside it)."""
    monitoring = service.monitoring
    live = monitoring.live(name)
    recommended, reasons = monitoring.recommendation(name)
    return {
        "live": live,
        "challenger": service.shadow.report(name),
        "retrain_recommended": recommended,
        "retrain_reasons": reasons,
        "retrain_policy": monitoring.policy_state(name),
        "labels": monitoring.audited(name)[1].describe(),
    }


def unknown_figures(service: Service, error: Exception) -> dict[str, Any]:
    detail = f"{service.monitoring.feedback.where} is unreachable ({type(error).__name__}: {error})"
    return {
        "live": {},
        "challenger": None,
        "retrain_recommended": False,
        "retrain_reasons": [],
        "retrain_policy": {"state": "unknown", "detail": detail},
        "labels": {"status": "unknown", "detail": detail},
    }


@router.post(
    "/{name}/{version}/activate", dependencies=[Depends(require_api_key)], responses=documented(401, 404, 409, 422)
)
async def activate(
    name: str,
    version: Annotated[int, Path(ge=1)],
    service: ServiceDep,
    force: Annotated[bool, Query(description="serve it even though the promotion gate rejected it")] = False,
) -> Activated:
    """Serve `version` from now on, on every worker: roll back to an older version or forward to a
    newer one. The next promoted version takes over from it. A version the promotion gate rejected
    is served only with `force=true` (409 otherwise, naming the rule that refused it)."""
    model_named(name, service)
    store = service.stores[name]
    metadata = store.get(version).metadata  # ModelNotFound -> 404
    rejected = not promotion.is_promoted(metadata)
    if rejected and not force:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{name} version {version} {why_not_served(metadata)}")
    activated = store.activate(version)
    await service.refresh()  # this worker at once; the others at their next poll
    return Activated(name=name, active=activated.number, forced=rejected, metadata=activated.metadata)


def why_not_served(metadata: dict[str, Any]) -> str:
    """Why a version does not serve unless forced, and what to do, in words."""
    gate, shadow = metadata.get("gate") or {}, metadata.get("shadow") or {}
    name = metadata.get("name")
    if in_shadow(metadata):
        return (
            f"is a challenger in shadow, waiting for its live labels ({gate.get('reason')}); "
            f"POST /models/{name}/challenger/promote, or add ?force=true to serve it anyway"
        )
    if promotion.is_challenger(metadata):
        return f"was dropped from shadow ({shadow.get('reason')}); add ?force=true to serve it anyway"
    return (
        f"was rejected by the promotion gate's {gate.get('rule')} rule ({gate.get('reason')}); "
        "add ?force=true to serve it anyway"
    )


def examples_of(model: Model, examples: TrainingExamples) -> tuple[np.ndarray, np.ndarray]:
    """The examples as arrays in the model's input form, or 422 naming what does not fit."""
    if len(examples.inputs) != len(examples.labels):
        raise HTTPException(
            422, f"{len(examples.inputs)} inputs but {len(examples.labels)} labels; one label per input"
        )
    try:
        inputs = np.asarray(examples.inputs, dtype=model.input.dtype)
        labels = np.array([model.class_index(label) for label in examples.labels], dtype=np.int64)
    except (ValueError, TypeError, OverflowError) as error:
        raise HTTPException(422, f"the examples do not fit {model.name}: {error}") from None
    if inputs.shape[1:] != model.input.row_shape:
        raise HTTPException(
            422, f"each input of {model.name} has the shape {list(model.input.row_shape)}; got {list(inputs.shape[1:])}"
        )
    if inputs.dtype.kind == "f" and not np.isfinite(inputs).all():
        raise HTTPException(422, "the inputs hold a number that is not finite (NaN or infinity)")
    return inputs, labels


@router.post(
    "/{name}/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(require_api_key)],
    responses=documented(400, 401, 404, 409, 413, 422, 429, 503),
)
async def queue_job(name: str, request: TrainingRequest, service: ServiceDep, response: Response) -> JobAccepted:
    """Queue a training job of any model, with the parameters it declares (GET /models/ gives their
    schema): a retrain from scratch, or a fine-tune of the serving version on `examples` or on the
    labelled feedback. Answers at once; GET /jobs/{id} follows it."""
    model = model_named(name, service)
    if not model.trainable:
        raise HTTPException(409, f"{name} is serve-only: it is trained elsewhere; publish a new ONNX file of it")
    if request.examples is not None and request.feedback:
        raise HTTPException(422, "send either examples or feedback=true, not both")
    try:
        if request.feedback:
            job = await run_in_threadpool(service.monitoring.train_on_feedback, name, request.parameters, request.kind)
        else:
            inputs, labels = examples_of(model, request.examples) if request.examples else (None, None)
            if request.kind == "fine-tune" and inputs is None:
                raise HTTPException(422, "a fine-tune learns from examples: send `examples`, or feedback=true")
            job = await run_in_threadpool(service.submit, request.kind, name, request.parameters, inputs, labels)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise HTTPException(422, f"the parameters of {name} are not acceptable: {problems}") from None
    return accepted(job, response)
