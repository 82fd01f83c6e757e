"""The Open Inference Protocol (KServe V2) REST API, for every registered model: what Triton, KServe,
MLServer and their clients speak (e.g. tritonclient's `InferenceServerClient`).

    GET  /v2                                          the server: name, version, extensions
    GET  /v2/health/live, /v2/health/ready            as /health/live and /health/ready
    GET  /v2/models/{name}[/versions/{version}]       a model's inputs and outputs (name, datatype, shape)
    GET  /v2/models/{name}[/versions/{version}]/ready 200 when this worker serves it
    POST /v2/models/{name}[/versions/{version}]/infer tensors in (JSON, or the binary data extension), out

Each model answers three outputs: `label` (BYTES: the class name, so a client needs no class table),
`probabilities` (FP32, rows x classes) and `prediction_id` (BYTES: for POST /feedback/). A
refusal is {"error": "..."} with a 4xx (503 while the model loads). These routes read the service
from the request, as the workshop's prediction routes do, and share their prediction path.
"""

from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.modelkit import Model
from app.part3.open_inference import HEADER_LENGTH, InferenceError, encode_response, outputs_of, parse_request
from app.part3.predictor import ModelNotReady, VersionNotServed
from app.part3.service import Service, service_of
from app.store import ModelNotFound

router = APIRouter(prefix="/v2", tags=["open inference protocol"])
SERVER_NAME = "fastapi-ml-workshop"
EXTENSIONS = ["binary_tensor_data"]
ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "a malformed request, named in `error`", **ERROR},
    404: {"description": "no such model or version", **ERROR},
    503: {"description": "the model is not loaded yet", **ERROR},
}
INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "shape", "datatype"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "shape": {"type": "array", "items": {"type": "integer"}},
                                    "datatype": {"type": "string"},
                                    "parameters": {"type": "object"},
                                    "data": {"type": "array"},
                                },
                            },
                        },
                        "outputs": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "example": {
                    "inputs": [{"name": "measurements", "shape": [1, 2], "datatype": "FP64", "data": [40.3, 195]}]
                },
            }
        },
    }
}


def model_of(service: Service, name: str) -> Model:
    model = service.kept.models.get(name)
    if model is None:
        raise InferenceError(f"no model {name!r}; the models are {', '.join(service.kept.models)}", 404)
    return model


def version_number(version: str) -> int:
    if not version.isdigit() or int(version) < 1:
        raise InferenceError(f"model versions are numbers from 1; got {version!r}", 404)
    return int(version)


def model_metadata(service: Service, name: str, version: str | None) -> dict[str, Any]:
    model = model_of(service, name)
    store = service.stores[name]
    if version is not None:
        try:
            store.get(version_number(version))
        except ModelNotFound:
            raise InferenceError(f"{name} has no version {version}", 404) from None
        versions = [version]
    else:
        versions = [str(number) for number in store.versions()]
    return {
        "name": name,
        "versions": versions,
        "platform": "onnxruntime_onnx",
        "inputs": [model.input.describe()],
        "outputs": outputs_of(model),
        "parameters": {"description": model.description, "classes": ",".join(model.classes)},
    }


@router.get("")
def server_metadata(request: Request) -> dict[str, Any]:
    """The server's name, version and protocol extensions."""
    return {"name": SERVER_NAME, "version": request.app.version, "extensions": EXTENSIONS}


@router.get("/health/live")
def server_live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", responses={503: {"description": "not every model is loaded yet"}})
def server_ready(request: Request, response: Response) -> dict[str, bool]:
    ready = service_of(request).kept.ready
    if not ready:
        response.status_code = 503
    return {"ready": ready}


@router.get("/models/{name}", responses=ERRORS)
def read_model(name: str, request: Request) -> dict[str, Any]:
    """The model's versions, input and outputs."""
    return model_metadata(service_of(request), name, None)


@router.get("/models/{name}/versions/{version}", responses=ERRORS)
def read_model_version(name: str, version: str, request: Request) -> dict[str, Any]:
    return model_metadata(service_of(request), name, version)


def readiness(request: Request, name: str, version: str | None) -> JSONResponse:
    service = service_of(request)
    model_of(service, name)
    wanted = None if version is None else version_number(version)
    try:
        kept = service.predictor.kept_model(name, wanted)
    except (ModelNotReady, VersionNotServed) as error:
        return JSONResponse({"name": name, "ready": False, "error": str(error)}, status_code=400)
    return JSONResponse({"name": name, "version": str(kept.version), "ready": True})


@router.get("/models/{name}/ready", responses=ERRORS)
def model_ready(name: str, request: Request) -> JSONResponse:
    """200 when this worker serves the model, 400 (with why) when not yet."""
    return readiness(request, name, None)


@router.get("/models/{name}/versions/{version}/ready", responses=ERRORS)
def model_version_ready(name: str, version: str, request: Request) -> JSONResponse:
    return readiness(request, name, version)


async def infer(request: Request, name: str, version: str | None) -> Response:
    service = service_of(request)
    model = model_of(service, name)
    wanted = None if version is None else version_number(version)
    parsed = parse_request(model, await request.body(), request.headers.get(HEADER_LENGTH))
    try:
        answers = await service.predictor.predict_rows(name, parsed.rows, wanted)
    except ModelNotReady as error:
        raise InferenceError(str(error), 503) from None
    except VersionNotServed as error:
        raise InferenceError(str(error), 404) from None
    ids = service.monitoring.answered(name, answers.version, answers.labels, answers.inputs)
    tensors = {
        "label": np.array(answers.labels, dtype=object),
        "probabilities": np.asarray(answers.probabilities, dtype=np.float32),
        "prediction_id": np.array(ids, dtype=object),
    }
    body, headers = encode_response(name, answers.version, parsed, tensors)
    return Response(body, headers=headers)


@router.post("/models/{name}/infer", responses=ERRORS, openapi_extra=INFER_BODY)
async def infer_latest(name: str, request: Request) -> Response:
    """Predict a batch of rows with the version this worker serves."""
    return await infer(request, name, None)


@router.post("/models/{name}/versions/{version}/infer", responses=ERRORS, openapi_extra=INFER_BODY)
async def infer_version(name: str, version: str, request: Request) -> Response:
    """As /infer, refused (404) unless `version` is the one this worker serves."""
    return await infer(request, name, version)
