"""The service's state and background work, shared by the routes through `ServiceDep`.

Start-up returns at once, so /health/live answers while the models load (importing Keras alone
takes seconds) or, on an empty store, while the first models train. Then, in the background:
1. leftovers of crashed saves are removed;
2. when a model has no version yet, or a version has no serving file (a store made before serving
   files), one "initial" job is queued (under the job store's submit lock, so two workers starting
   together queue one): its trainer process trains what is missing and exports the serving files.
   A worker never trains or exports: it imports no training library;
3. the refresher loads what the store serves and keeps polling it (see kept_models.py), and the
   job runner takes queued jobs (see runner.py).
"""

import asyncio
import contextlib
import logging
from typing import Annotated

import numpy as np
from fastapi import Depends, Request

from app.part3 import metrics
from app.part3.jobs import Job, JobKind, JobStore
from app.part3.kept_models import KeptModels
from app.part3.predictor import Predictor
from app.part3.runner import JobRunner, remove_unfinished_saves
from app.part3.settings import Settings
from app.part3.trainer import needs_first_models

log = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """Too many training jobs are waiting."""


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jobs = JobStore(settings.jobs_dir)
        self.kept = KeptModels(settings.models_dir)
        self.requests_in_progress = metrics.RequestsInProgress()
        self.predictor = Predictor(self.kept, self.requests_in_progress)
        self.runner = JobRunner(self.jobs, settings)
        self.startup_error: str | None = None
        self._refresher: asyncio.Task | None = None

    @property
    def stores(self):
        return self.kept.stores

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._refresher = asyncio.create_task(self._bootstrap_then_refresh(), name="model-refresher")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await asyncio.to_thread(self.runner.stop)
        metrics.forget_this_process()

    async def _bootstrap_then_refresh(self) -> None:
        try:
            await asyncio.to_thread(self.bootstrap)
        except Exception as error:  # e.g. an unwritable models dir: stay alive and not ready, and say why
            log.exception("start-up failed; the service stays not ready")
            self.startup_error = f"{type(error).__name__}: {error}"
            return
        self.runner.start()
        while True:
            try:
                await self.refresh()
            except Exception:  # e.g. the volume went away for a moment: keep serving, try again
                log.exception("could not check the store for new versions")
            await asyncio.sleep(self.settings.poll_interval)

    async def refresh(self) -> dict[str, int]:
        swapped = await asyncio.to_thread(self.kept.refresh)
        for name, version in swapped.items():
            metrics.SERVING_VERSION.labels(name).set(version)
        return swapped

    def not_ready_reason(self) -> str:
        """Why /health/ready says 503, for whoever reads it."""
        if self.startup_error:
            return f"start-up failed: {self.startup_error}"
        reasons = []
        for name, version in self.kept.versions().items():
            if version is not None:
                if name in self.kept.waiting:  # served, by an older version than the store's
                    reasons.append(self.kept.waiting[name])
                continue
            if name in self.kept.problems:
                number, problem = self.kept.problems[name]
                reasons.append(f"{name} version {number} could not be loaded ({problem})")
            elif name in self.kept.waiting:
                reasons.append(self.kept.waiting[name])
            elif (first := self._first_training()) is not None:
                advice = " (restart the service, or POST /retrain/, to try again)" if first.status == "failed" else ""
                reasons.append(f"the first {name} training (job {first.id}): {first.progress}{advice}")
            else:
                reasons.append(f"{name} is loading")
        return "; ".join(reasons)

    def _first_training(self) -> Job | None:
        return next((job for job in reversed(self.jobs.all()) if job.kind == "initial"), None)

    def bootstrap(self) -> None:
        for store in self.stores.values():
            remove_unfinished_saves(store)
        self.jobs.clean_temporary(older_than=60)
        self.ensure_first_models()

    def ensure_first_models(self) -> None:
        if not needs_first_models(self.settings.models_dir):
            return
        with self.jobs.submit_lock():
            pending = any(job.kind == "initial" and not job.finished for job in self.jobs.all())
            if needs_first_models(self.settings.models_dir) and not pending:
                job = self.submit("initial", self.settings.first_training_epochs)
                log.info("a model or a serving file is missing: queued the first training, job %s", job.id)

    # -- jobs -----------------------------------------------------------------------------------
    def submit(
        self, kind: JobKind, epochs: int, images: np.ndarray | None = None, labels: np.ndarray | None = None
    ) -> Job:
        """Queue a job; QueueFull when too many already wait (each holds its images on disk)."""
        waiting = self.jobs.count("queued")
        if waiting >= self.settings.max_queued_jobs:
            raise QueueFull(f"{waiting} training jobs are already waiting; try again when some have run")
        job = self.jobs.submit(kind, epochs, images, labels)
        self.runner.wake()
        return job


def service_of(request: Request) -> Service:
    return request.app.state.service


async def get_service(request: Request) -> Service:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a hop that costs about 0.1 ms
    # per request here (measured, bench/RESULTS.md) for one attribute read.
    return service_of(request)


ServiceDep = Annotated[Service, Depends(get_service)]
