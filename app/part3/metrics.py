"""Prometheus metrics: requests and latencies per route template, predictions per model version,
training jobs by status and training durations.

Several workers (`fastapi run --workers 2`) are several processes, each with its own counters, and a
scrape reaches one of them. Set PROMETHEUS_MULTIPROC_DIR to an empty folder before starting the
service and every worker writes its samples there; /metrics then adds up all workers' samples
(prometheus_client's multiprocess mode). Empty the folder between runs of the service: the samples
of a previous run would be counted again. Without the variable each worker reports its own counts,
which is right for a single worker. The jobs-by-status gauge is read from the shared job store at
each scrape, so it is the same from every worker in both modes.
"""

import functools
import os
import time
from collections import Counter as Tally
from typing import get_args

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.part3.jobs import JobStatus, JobStore

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)

REQUESTS = Counter(
    "workshop_http_requests", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "workshop_http_request_duration_seconds", "Time to answer a request, by method and route template", ["method", "route"]
)
PREDICTIONS = Counter("workshop_predictions", "Predictions served, by model and model version", ["model", "version"])
TRAINING_DURATION = Histogram(
    "workshop_training_duration_seconds",
    "Wall time of finished training jobs, from start to end, by kind and outcome",
    ["kind", "status"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
SERVING_VERSION = Gauge(
    "workshop_serving_version", "The model version a worker serves", ["model"], multiprocess_mode="liveall"
)
UNMATCHED = "unmatched"  # one label for every unknown path, so a scanner cannot explode the label set


@functools.cache
def predictions_of(model: str, version: int) -> Counter:
    """PREDICTIONS' series for one model version, looked up once (`labels()` validates and locks on
    every call, a few microseconds of a 0.1 ms prediction)."""
    return PREDICTIONS.labels(model, str(version))


class JobsCollector:
    """The jobs in the shared store by status, counted at scrape time."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    def collect(self):
        counts = Tally(job.status for job in self.jobs.all())
        family = GaugeMetricFamily("workshop_training_jobs", "Training jobs in the job store, by status", labels=["status"])
        for status in get_args(JobStatus):
            family.add_metric([status], counts.get(status, 0))
        yield family


def render(jobs: JobStore, *collectors) -> tuple[bytes, str]:
    """The exposition text for /metrics and its content type; `collectors` add gauges computed at
    scrape time (e.g. the service's monitoring: live accuracy and drift)."""
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    shared = CollectorRegistry(auto_describe=False)
    shared.register(JobsCollector(jobs))
    for collector in collectors:
        shared.register(collector)
    return generate_latest(registry) + generate_latest(shared), CONTENT_TYPE_LATEST


def forget_this_process() -> None:
    """On shutdown: drop this worker's live gauges from the multiprocess folder."""
    if MULTIPROCESS_DIR:
        multiprocess.mark_process_dead(os.getpid())


class RequestsInProgress:
    """This worker's load as the predictor needs it: how many requests are in progress, and whether
    the newest one started right after the previous answer. A request runs on the event loop from
    start to end without pausing, so requests that arrive together do not overlap: the second
    starts soon after the first one's answer (the event loop reads and parses it: 25 us measured at
    8 connections), where a client that waits for each answer adds a network round trip (57-83 us
    measured at one connection, on loopback)."""

    QUEUED_GAP = 40e-6  # seconds

    def __init__(self) -> None:
        self.count = 0
        self.last_end = 0.0
        self.newest_waited = False

    def started(self, now: float) -> None:
        self.count += 1
        self.newest_waited = now - self.last_end < self.QUEUED_GAP

    def ended(self, now: float) -> None:
        self.count -= 1
        self.last_end = now

    def busy(self) -> bool:
        return self.count > 1 or self.newest_waited


class RequestMetricsMiddleware:
    """Counts and times every request under its route template (/jobs/{job_id}, not each id), counts
    the requests in progress, and names the answering worker in an X-Worker-PID header (several
    workers share one port)."""

    def __init__(self, app: ASGIApp, in_progress: RequestsInProgress | None = None) -> None:
        self.app = app
        self.pid_header = (b"x-worker-pid", str(os.getpid()).encode())
        self.in_progress = in_progress or RequestsInProgress()
        self._series: dict[tuple[str, str, int], tuple] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_with_pid(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), self.pid_header]
            await send(message)

        self.in_progress.started(started)
        try:
            await self.app(scope, receive, send_with_pid)
        finally:
            ended = time.perf_counter()
            self.in_progress.ended(ended)
            route = scope.get("route")  # set by the router once a route matched
            count, latency = self.series(scope.get("method", ""), getattr(route, "path", None) or UNMATCHED, status)
            count.inc()
            latency.observe(ended - started)

    def series(self, method: str, template: str, status: int):
        """The counter and histogram of these labels. `labels()` validates and locks on every call;
        the set of (method, template, status) is small and fixed, so each is looked up once."""
        key = (method, template, status)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = (REQUESTS.labels(method, template, str(status)), LATENCY.labels(method, template))
        return found
