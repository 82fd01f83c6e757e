"""The service's state and background work, shared by the routes through `ServiceDep`.

Start-up returns at once, so /health/live answers while the models load (importing Keras alone
takes seconds) or, on an empty store, while the first models train. Then, in the background:
1. when a model has no version yet, or a version has no serving file (a store made before serving
   files), one "initial" job is queued (the records store it only if no other is unfinished, so two
   workers starting together queue one): its trainer trains what is missing and exports the serving
   files. A worker never trains, exports or tidies the store: it only reads it (the trainer removes
   the leftovers of crashed saves when it starts), and imports no training library;
2. the refresher loads what the store serves and keeps polling it (see kept_models.py), and has the
   labels judge each model's challenger (shadow.py, whose thread answers copies of the requests); in
   the embedded mode the trainer keeper makes sure the store has its one trainer (trainer_keeper.py).
Training jobs go on the queue (training_queue.py) and trainers run them (trainer_worker.py).
"""

import asyncio
import contextlib
import functools
import logging
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request

from app.modelkit import Parameters
from app.part3 import prometheus
from app.part3.job_records import JobRecords
from app.part3.job_status import Job, JobKind
from app.part3.kept_models import KeptModels, needs_first_models
from app.part3.monitoring import Monitoring
from app.part3.predictor import Predictor
from app.part3.recovery import fail_silent_jobs
from app.part3.settings import Settings
from app.part3.shadow import Shadow
from app.part3.trainer_keeper import TrainerKeeper
from app.part3.training_queue import QUEUE_ERRORS, QueueUnavailable, TrainingQueue
from app.storage.store_errors import StoreUnavailable

log = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """Too many training jobs are waiting."""


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kept = KeptModels(settings.store_location, settings.models_cache)
        self.requests_in_progress = prometheus.RequestsInProgress()
        self.predictor = Predictor(self.kept, self.requests_in_progress)
        self.keeper: TrainerKeeper | None = None
        self.monitoring = Monitoring(settings, self.kept, self.list_jobs, self.submit)  # feedback, drift, policy
        self.shadow = Shadow(settings, self.kept, self.monitoring.feedback)  # challengers answer copies
        self.monitoring.shadow_copies = self.shadow.offer
        self.startup_error: str | None = None
        # Why the model store (or the queue, at start-up) cannot be reached now, or None: set and cleared
        # by the refresher. Meanwhile the worker serves what it holds and refuses jobs that would fail.
        self.unreachable: str | None = None
        self._refresher: asyncio.Task | None = None

    @property
    def stores(self):
        return self.kept.stores

    @functools.cached_property
    def queue(self) -> TrainingQueue:
        """Made on first use: in the embedded mode it creates the queue's file, and importing the
        app must write nothing."""
        return TrainingQueue(self.settings)

    @property
    def jobs(self) -> JobRecords:
        return self.queue.records

    @contextlib.contextmanager
    def reaching_the_queue(self):
        """Turn the queue's connection errors into QueueUnavailable (503 naming the queue)."""
        try:
            yield
        except QUEUE_ERRORS as error:
            raise self.queue.unavailable(error) from error

    def list_jobs(self) -> list[Job]:
        """Every job in submission order, those whose trainer went silent settled first."""
        with self.reaching_the_queue():
            return fail_silent_jobs(self.jobs, self.settings.store_location, self.settings.heartbeat_timeout)

    def get_job(self, job_id: str) -> Job:
        with self.reaching_the_queue():
            return fail_silent_jobs(
                self.jobs, self.settings.store_location, self.settings.heartbeat_timeout, [self.jobs.get(job_id)]
            )[0]

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if folder := self.settings.prometheus_multiproc_dir:  # before the first request's samples
            folder.mkdir(parents=True, exist_ok=True)
        self._refresher = asyncio.create_task(self._bootstrap_then_refresh(), name="model-refresher")
        self.shadow.scorer.start()

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self.keeper is not None:
            await asyncio.to_thread(self.keeper.stop)
        await asyncio.to_thread(self.shadow.scorer.stop)
        self.monitoring.feedback.close()
        prometheus.forget_this_process(self.settings.prometheus_multiproc_dir)

    async def _bootstrap_then_refresh(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.bootstrap)
                break
            except (StoreUnavailable, QueueUnavailable) as error:  # may come back: try again, say why meanwhile
                log.error("start-up waits: %s", error)
                self.unreachable = str(error)
            except Exception as error:  # e.g. an unwritable models dir: stay alive and not ready, and say why
                log.exception("start-up failed; the service stays not ready")
                self.startup_error = f"{type(error).__name__}: {error}"
                return
            await asyncio.sleep(self.settings.poll_interval)
        self.unreachable = None
        if not self.settings.queue_url:  # distributed mode: trainers are started on their own
            self.keeper = TrainerKeeper(self.jobs, self.settings)
            self.keeper.start()
        while True:
            try:
                await self.refresh()
                self.unreachable = None
            except StoreUnavailable as error:  # keep serving what this worker holds; say why meanwhile
                if self.unreachable != str(error):
                    log.error("%s; serving the versions held", error)
                self.unreachable = str(error)
            except Exception:  # e.g. the volume went away for a moment: keep serving, try again
                log.exception("could not check the store for new versions")
            try:
                await self.monitoring.tick()
            except Exception:  # the policy must never stop the refresher
                log.exception("could not apply the retrain policy")
            try:
                if await self.shadow.tick():  # a challenger promoted or dropped: this worker follows at once
                    await self.refresh()
            except Exception:
                log.exception("could not check the challengers")
            await asyncio.sleep(self.settings.poll_interval)

    async def refresh(self) -> dict[str, int]:
        swapped = await asyncio.to_thread(self.kept.refresh)
        for name, version in swapped.items():
            prometheus.SERVING_VERSION.labels(name).set(version)
        return swapped

    def not_ready_reason(self) -> str:
        """Why /health/ready says 503, for whoever reads it."""
        if self.startup_error:
            return f"start-up failed: {self.startup_error}"
        if self.unreachable:  # nothing below can ask the store
            return self.unreachable
        reasons = []
        for name, version in self.kept.versions().items():
            if version is None and not self.kept.expected(name):
                continue  # a serve-only model nobody published yet: readiness does not wait for it
            if version is not None:
                if name in self.kept.waiting:  # served, by an older version than the store's
                    reasons.append(self.kept.waiting[name])
                continue
            store = self.stores[name]
            if name in self.kept.problems:
                number, problem = self.kept.problems[name]
                reasons.append(f"{name} version {number} could not be loaded ({problem})")
            elif name in self.kept.waiting:
                reasons.append(self.kept.waiting[name])
            elif store.active() is None and (newest := store.latest()) is not None:
                gate = store.get(newest).metadata.get("gate") or {}
                reasons.append(
                    f"the promotion gate promoted no {name} version (version {newest}: {gate.get('reason')}); "
                    f"train a better one, or serve one anyway with POST /models/{name}/{newest}/activate?force=true"
                )
            elif (first := self._first_training()) is not None:
                advice = (
                    f" (restart the service, or POST /models/{name}/jobs, to try again)"
                    if first.status == "failed"
                    else ""
                )
                reasons.append(f"the first {name} training (job {first.id}): {first.progress}{advice}")
            else:
                reasons.append(f"{name} is loading")
        return "; ".join(reasons)

    def _first_training(self) -> Job | None:
        try:
            return next((job for job in reversed(self.list_jobs()) if job.kind == "initial"), None)
        except QueueUnavailable:  # readiness never depends on the queue
            return None

    def bootstrap(self) -> None:
        with self.reaching_the_queue():  # in the distributed mode the secret is in the queue's Redis
            _ = self.monitoring.ids  # make or read the store's feedback secret now, not in a request
        self.ensure_first_models()

    def ensure_first_models(self) -> None:
        if not needs_first_models(self.settings.store_location, self.settings.models_cache):
            return
        # Each trainable model's parameters for its first training, validated here (the trainer runs them).
        asked = {"epochs": self.settings.initial_epochs} if self.settings.initial_epochs else {}
        parameters = {
            name: self.settings.training_parameters(
                model,
                {key: value for key, value in asked.items() if key in (model.parameters or Parameters).model_fields},
            ).model_dump()
            for name, model in self.kept.models.items()
            if model.trainable
        }
        with self.reaching_the_queue():
            job = self.jobs.submit("initial", None, parameters, unless_pending=True)
            self.queue.enqueue_turn(job.id)
        log.info("a model or a serving file is missing: the first training is job %s", job.id)

    # -- jobs -----------------------------------------------------------------------------------
    def submit(
        self,
        kind: JobKind,
        model: str,
        parameters: dict[str, Any] | None = None,
        inputs: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        unless_pending: bool = False,
        **fields: Any,
    ) -> Job:
        """Queue a job of `model` and its turn, its parameters checked against the model's declaration
        (pydantic's ValidationError names a bad one); QueueFull when too many already wait (each holds
        its examples on disk). `fields` go into the job's record (JobRecords.submit)."""
        validated = self.settings.training_parameters(self.kept.models[model], parameters).model_dump()
        if self.unreachable:  # its trainer could neither read nor publish: refuse now, naming the store
            raise StoreUnavailable(f"{self.unreachable}; no training can run until it is back")
        with self.reaching_the_queue():
            waiting = self.jobs.count("queued")
            if waiting >= self.settings.max_queued_jobs:
                raise QueueFull(f"{waiting} training jobs are already waiting; try again when some have run")
            job = self.jobs.submit(kind, model, validated, inputs, labels, unless_pending=unless_pending, **fields)
            self.queue.enqueue_turn(job.id)
        return job


def service_of(request: Request) -> Service:
    return request.app.state.service


async def get_service(request: Request) -> Service:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a hop that costs more than
    # the attribute read it would do (bench/RESULTS.md).
    return service_of(request)


ServiceDep = Annotated[Service, Depends(get_service)]
