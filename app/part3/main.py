"""Part 3: the production service, generic over its models (app/registry.py): the workshop's routes,
the Open Inference Protocol for every model, training jobs, rollback, health, metrics, offline docs.

    fastapi run app/part3/main.py --port 80                  # one worker
    fastapi run app/part3/main.py --port 80 --workers 2      # several: they share models/ and the jobs

Settings come from WORKSHOP_* environment variables (app/part3/settings.py). The design, in short:
- the model store (models/) is the only shared state: versions are published whole by a rename,
  and every worker polls it and swaps its kept model when the active version changes;
- a training is a job on a task queue (Huey: SQLite in models/ by default, Redis with
  WORKSHOP_QUEUE_URL), run by a trainer process, one at a time, in submission order;
- routes never load a model from disk and never train: they read the kept model or queue a job.
"""

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.encodable_errors import answer_validation_errors_encodably
from app.images import UploadError
from app.offline_docs import serve_docs_offline
from app.part3.body_limit import BodySizeLimit
from app.part3.job_status import JobNotFound
from app.part3.open_inference import InferenceError
from app.part3.predictor import ModelNotReady
from app.part3.prometheus import RequestMetricsMiddleware
from app.part3.routes import (
    challenger,
    feedback,
    health,
    inference,
    jobs,
    metrics,
    models,
    predict,
    root,
    train,
    upload,
)
from app.part3.service import QueueFull, Service
from app.part3.settings import Settings
from app.part3.training_queue import QueueUnavailable
from app.storage.store_errors import StoreUnavailable
from app.store import ModelNotFound

# The predict routes first: FastAPI tries the routers in this order, and these are the hot ones.
ROUTERS = (
    predict.router,
    inference.router,
    root.router,
    train.router,
    jobs.router,
    models.router,
    challenger.router,
    health.router,
    metrics.router,
    upload.router,
    feedback.router,
)


def configure_logging(level: str) -> None:
    logger = logging.getLogger("app")
    logger.setLevel(level.upper())
    if not logger.handlers:  # uvicorn configures its own loggers only
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        logger.addHandler(handler)


def methods_for(path: str) -> set[str]:
    """Every method some route of ours answers at `path`."""
    return {
        method
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.path_regex.match(path)
        for method in route.methods or ()
    }


def add_error_handlers(app: FastAPI) -> None:
    """Known failures become clear 4xx/503 answers naming the problem, never a 500."""
    answer_validation_errors_encodably(app)  # a refused body holding NaN or 1e999: 422, not a 500

    @app.exception_handler(405)
    async def method_not_allowed(request: Request, error: HTTPException) -> JSONResponse:
        # The router names only the methods of the first route matching the path (GET for
        # /predict/, which also takes POST); the Allow header must list them all.
        allowed = methods_for(request.url.path) | set(filter(None, (error.headers or {}).get("Allow", "").split(", ")))
        return JSONResponse(
            {"detail": f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}"},
            status_code=405,
            headers={"Allow": ", ".join(sorted(allowed))},
        )

    @app.exception_handler(UploadError)
    async def bad_upload(request: Request, error: UploadError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status_code)

    @app.exception_handler(JobNotFound)
    @app.exception_handler(ModelNotFound)
    async def not_found(request: Request, error: LookupError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(ModelNotReady)
    async def not_ready(request: Request, error: ModelNotReady) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(QueueUnavailable)
    @app.exception_handler(StoreUnavailable)
    async def unreachable(request: Request, error: RuntimeError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "10"})

    @app.exception_handler(InferenceError)
    async def bad_inference(request: Request, error: InferenceError) -> JSONResponse:
        # The Open Inference Protocol's error shape, {"error": ...}, on its own routes.
        return JSONResponse({"error": error.message}, status_code=error.status_code)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=429, headers={"Retry-After": "30"})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()  # returns at once: models load in the background (see /health/ready)
        yield
        await service.stop()

    app = FastAPI(
        title="The workshop's model service",
        summary="The workshop's production service: its models (the workshop's two and any you add), the Open "
        "Inference Protocol, training jobs, rollback, health and metrics.",
        version="3.0.0",
        lifespan=lifespan,
        form_limits={"max_files": settings.max_files},
    )
    app.state.service = service
    app.add_middleware(BodySizeLimit, max_body_size=settings.max_upload_bytes)
    # Outermost: counts and times every answer, 413s too, and counts the requests in progress.
    app.add_middleware(RequestMetricsMiddleware, in_progress=service.requests_in_progress)
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    serve_docs_offline(app)  # after the routes, for the same reason: /docs and /redoc from local files, not a CDN
    return app


app = create_app()
