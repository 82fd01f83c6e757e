"""Prometheus metrics: requests and latencies per route template, predictions per model version,
training jobs by status, training durations and the promotion gate's decisions.

Several workers (`fastapi run --workers 2`) are several processes, each with its own counters, and a
scrape reaches one of them. Set PROMETHEUS_MULTIPROC_DIR to an empty folder before starting the
service (prometheus_client reads it at import; the service reads it through its Settings and makes
the folder when it starts) and every worker writes its samples there; /metrics then adds up all workers' samples
(prometheus_client's multiprocess mode). Empty the folder between runs of the service: the samples
of a previous run would be counted again. Without the variable each worker reports its own counts,
which is right for a single worker. The jobs by status and the finished jobs' durations are read
from the shared job records at each scrape (trainers are processes of their own, maybe on other
machines), so they are the same from every worker in both modes.
"""

import functools
import os
import time
from collections import Counter as Tally
from pathlib import Path
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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.part3.job_status import JobStatus
from app.promotion import CHALLENGER, PROMOTED, REJECTED
from app.store import ModelStore

REQUESTS = Counter(
    "workshop_http_requests", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "workshop_http_request_duration_seconds",
    "Time to answer a request, by method and route template",
    ["method", "route"],
)
PREDICTIONS = Counter("workshop_predictions", "Predictions served, by model and model version", ["model", "version"])
SERVING_VERSION = Gauge(
    "workshop_serving_version", "The model version a worker serves", ["model"], multiprocess_mode="liveall"
)
UNMATCHED = "unmatched"  # one label for every unknown path, so a scanner cannot explode the label set


@functools.cache
def predictions_of(model: str, version: int) -> Counter:
    """PREDICTIONS' series for one model version, looked up once (`labels()` validates and locks on
    every call)."""
    return PREDICTIONS.labels(model, str(version))


class JobsCollector:
    """The jobs in the shared records by status, and the kept finished jobs' durations by kind and
    outcome, read at scrape time. Nothing when the queue cannot be reached: the rest still scrapes."""

    def __init__(self, list_jobs) -> None:
        self.list_jobs = list_jobs

    def collect(self):
        try:
            jobs = self.list_jobs()
        except Exception:  # the queue unreachable: these samples are missing from this scrape
            return
        counts = Tally(job.status for job in jobs)
        family = GaugeMetricFamily(
            "workshop_training_jobs", "Training jobs in the job records, by status", labels=["status"]
        )
        for status in get_args(JobStatus):
            family.add_metric([status], counts.get(status, 0))
        yield family
        durations: dict[tuple[str, str], list[float]] = {}
        for job in jobs:
            if job.finished and job.started_at and job.finished_at:
                seconds = (job.finished_at - job.started_at).total_seconds()
                durations.setdefault((job.kind, job.status), []).append(seconds)
        summary = SummaryMetricFamily(
            "workshop_training_duration_seconds",
            "Wall time of the kept finished training jobs, from start to end, by kind and outcome",
            labels=["kind", "status"],
        )
        for labels, seconds in sorted(durations.items()):
            summary.add_metric(list(labels), len(seconds), sum(seconds))
        yield summary


class GateDecisionsCollector:
    """The promotion gate's decisions, counted at scrape time from the versions' metadata: they are
    made where a version is published (a trainer process, a notebook, a worker's first start), so
    the store is the one place that sees them all, the same from every worker and in both modes.
    Versions published before the gate existed carry no decision and are not counted, nor are the
    rejected versions the trainer removed (WORKSHOP_REJECTED_KEPT)."""

    def __init__(self, stores: dict[str, ModelStore]) -> None:
        self.stores = stores

    def collect(self):
        family = CounterMetricFamily(
            "workshop_gate_decisions",
            "Promotion gate decisions on published versions, by model and decision",
            labels=["model", "decision"],
        )
        for name, store in self.stores.items():
            decisions = Tally((version.metadata.get("gate") or {}).get("decision") for version in store.all_versions())
            for decision in (PROMOTED, REJECTED, CHALLENGER):
                family.add_metric([name, decision], decisions.get(decision, 0))
        yield family


def render(
    list_jobs, stores: dict[str, ModelStore] | None = None, *collectors, multiprocess_dir: Path | None = None
) -> tuple[bytes, str]:
    """The exposition text for /metrics and its content type; `collectors` add gauges computed at
    scrape time (e.g. the service's monitoring: live accuracy and drift). `multiprocess_dir` is
    Settings.prometheus_multiproc_dir: every worker's samples, added up."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))
    else:
        registry = REGISTRY
    shared = CollectorRegistry(auto_describe=False)
    shared.register(JobsCollector(list_jobs))
    if stores:
        shared.register(GateDecisionsCollector(stores))
    for collector in collectors:
        shared.register(collector)
    return generate_latest(registry) + generate_latest(shared), CONTENT_TYPE_LATEST


def forget_this_process(multiprocess_dir: Path | None) -> None:
    """On shutdown: drop this worker's live gauges from the multiprocess folder."""
    if multiprocess_dir:
        multiprocess.mark_process_dead(os.getpid(), path=str(multiprocess_dir))


class RequestsInProgress:
    """This worker's load as the predictor needs it: how many requests are in progress, and whether
    the newest one started right after the previous answer. A request runs on the event loop from
    start to end without pausing, so requests that arrive together do not overlap: the second
    starts soon after the first one's answer (the event loop only reads and parses it), where a
    client that waits for each answer adds a network round trip (bench/RESULTS.md has both gaps)."""

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
            found = self._series[key] = (
                REQUESTS.labels(method, template, str(status)),
                LATENCY.labels(method, template),
            )
        return found
