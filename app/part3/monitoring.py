"""When to retrain: live accuracy from labelled feedback, drift of live requests, and the policy.

Generic over the registry: every model gets the same signals.

- Prediction ids (prediction_ids.py) are issued on the prediction path, which writes nothing else
  but its rows in a bounded in-memory window per model (`saw`: an append) and, while the model has a
  challenger, a copy in the shadow queue (shadow.py).
- Live accuracy comes from the shared feedback table (feedback_records.py): every worker reports the same.
- Drift compares this worker's window with the serving version's reference (app/drift.py): each
  worker judges its own traffic. Running the model on the window for the confidences happens when a
  signal is asked for (GET /models/, a /metrics scrape), off the prediction path, at most once a
  second per model.
- Labels that contradict what the serving version knows for sure are flagged (app/label_audit.py)
  and kept out of every job on feedback and of the gate's live holdout (live_holdout.py).
- Retraining is recommended when drift is significant or live accuracy is below the floor on
  enough labels. With WORKSHOP_RETRAIN_POLICY=fine-tune-on-feedback a worker then queues one
  fine-tune of that model on its labelled feedback through the normal submission path (the trainer
  mixes in a replay of the serving version's data; the gate judges it on the frozen and the live
  holdout): never while another fine-tune of it waits or runs, at most once every
  WORKSHOP_RETRAIN_MIN_INTERVAL seconds across all workers, and after a fine-tune on feedback (refused,
  a challenger, or promoted and not yet judged by labels) only once WORKSHOP_RETRAIN_MIN_NEW_LABELS new
  labels came. `policy_state` says in words what it does and why (in /models/).
"""

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from prometheus_client.core import GaugeMetricFamily

from app import drift
from app.images import UploadError
from app.label_audit import NOT_JUDGED, LabelAudit
from app.part3 import live_holdout
from app.part3.feedback_backends import open_feedback
from app.part3.feedback_records import FeedbackStore, LabelledRows
from app.part3.job_status import Job
from app.part3.kept_models import KeptModels
from app.part3.prediction_ids import PredictionIds, input_digest, shared_secret, shared_secret_in_redis
from app.part3.settings import Settings
from app.part3.training_queue import QueueUnavailable

log = logging.getLogger(__name__)
CACHE_SECONDS = 1.0


class Monitoring:
    def __init__(
        self, settings: Settings, kept: KeptModels, jobs: Callable[[], list[Job]], submit: Callable[..., Job]
    ) -> None:
        self.settings = settings
        self.kept = kept
        self.jobs = jobs  # every job, in submission order (a callable: the queue is made on first use)
        self.submit = submit
        self.feedback: FeedbackStore = open_feedback(settings)
        self.requests: dict[str, deque] = {name: deque(maxlen=settings.drift_window) for name in kept.stores}
        self._ids: PredictionIds | None = None
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._computing = threading.Lock()
        self._auditing = threading.Lock()
        self._audits: dict[str, tuple[Any, tuple[LabelledRows, LabelAudit]]] = {}
        self._last_policy_check = 0.0
        # Where each answer's copy goes for a challenger in shadow (shadow.py's `offer`; set by the service).
        self.shadow_copies: Callable[[str, int, list[str], np.ndarray, list[str]], None] | None = None

    # -- the prediction path --------------------------------------------------------------------
    @property
    def ids(self) -> PredictionIds:
        if self._ids is None:
            self._ids = PredictionIds(self._secret(), self.settings.feedback_max_age)
        return self._ids

    def _secret(self) -> bytes:
        if self.settings.feedback_secret is not None:
            return self.settings.feedback_secret.get_secret_value().encode()
        if self.settings.queue_url:  # no folder is shared across machines: Redis is (unreachable: not ready)
            return shared_secret_in_redis(self.settings.queue_url)
        try:
            return shared_secret(self.settings.models_dir)
        except OSError:  # a read-only store: predictions still answer; feedback works on this worker only
            log.exception("cannot keep a feedback secret in the store; set WORKSHOP_FEEDBACK_SECRET")
            return secrets.token_bytes(32)

    def answered(self, name: str, version: int, labels: list[str], rows: np.ndarray) -> list[str]:
        """What a prediction path does after answering: keep the rows in the drift window, issue one
        prediction id per row (feedback names its answer with it), and queue a copy for the model's
        challenger if it has one."""
        self.saw(name, version, rows)
        issue = self.ids.issue
        ids = [issue(name, version, label, input_digest(row)) for label, row in zip(labels, rows, strict=True)]
        if self.shadow_copies is not None:
            self.shadow_copies(name, version, labels, rows, ids)
        return ids

    def saw(self, name: str, version: int, rows: np.ndarray) -> None:
        """Keep the rows a version answered in the model's drift window (the oldest fall out)."""
        window = self.requests[name]
        if len(rows) == 1:
            window.append((version, rows[0]))
        else:
            window.extend((version, row) for row in rows)

    def reset(self, name: str) -> None:
        """Start a new drift window for `name` (e.g. after the traffic's source was fixed)."""
        self.requests[name].clear()
        self._forget(name, "drift")

    def feedback_recorded(self, name: str) -> None:
        """This worker reports the new label at once (the others within CACHE_SECONDS)."""
        self._forget(name, "live")

    def _forget(self, name: str, what: str) -> None:
        with self._computing:
            self._cache.pop((name, what), None)

    # -- the signals ----------------------------------------------------------------------------
    def _cached(self, name: str, what: str, compute: Callable[[], Any]) -> Any:
        with self._computing:
            found = self._cache.get((name, what))
            if found is not None and time.monotonic() - found[0] < CACHE_SECONDS:
                return found[1]
            value = compute()
            self._cache[(name, what)] = (time.monotonic(), value)
            return value

    def live(self, name: str) -> dict[int, dict[str, Any]]:
        """{version: {"accuracy", "n_labels", "window"}} from the shared feedback table. Labels the audit
        flags count for nothing: a relabelling neither lowers a version's live accuracy nor makes the
        policy retrain again and again on what is left of it."""

        def compute() -> dict[int, dict[str, Any]]:
            rows, audit = self.audited(name)
            flagged = rows.seqs[audit.flagged].tolist() if audit.n_flagged else []
            accuracies = self.feedback.live_accuracy(name, self.settings.live_window, flagged)
            return {version: live.__dict__ for version, live in accuracies.items()}

        return self._cached(name, "live", compute)

    def drift(self, name: str) -> dict[str, Any]:
        return self._cached(name, "drift", lambda: self._drift(name))

    def _drift(self, name: str) -> dict[str, Any]:
        kept = self.kept.get(name)
        if kept is None:
            return {"status": "not loaded"}
        window = [entry for entry in list(self.requests[name]) if entry[0] == kept.version]
        settings = self.settings
        report: dict[str, Any] = {
            "version": kept.version,
            "window": len(window),
            "max_window": settings.drift_window,
            "min_window": settings.drift_min_window,
            "alpha": settings.drift_alpha,
            "signals": {},
        }
        reference = self.kept.stores[name].get(kept.version).metadata.get("drift_reference")
        if reference is None:
            return {
                **report,
                "status": "no reference",
                "detail": f"version {kept.version} was published without a drift reference: no drift signal",
            }
        if len(window) < settings.drift_min_window:
            return {
                **report,
                "status": "collecting",
                "detail": f"{len(window)} requests of the {settings.drift_min_window} needed before any signal",
            }
        rows = np.stack([row for _, row in window])
        signals = drift.compare(reference, drift.features(kept.model.model, rows, kept.model.probabilities(rows)))
        threshold = settings.drift_alpha / max(len(signals), 1)  # Bonferroni: alpha over all the signals
        for signal in signals.values():
            signal["significant"] = signal["p_value"] < threshold
        significant = any(signal["significant"] for signal in signals.values())
        return {**report, "threshold": threshold, "signals": signals, "status": "drift" if significant else "no drift"}

    def recommendation(self, name: str) -> tuple[bool, list[str]]:
        """Whether to retrain `name`, and why, in words. Drift recommends it unless the serving version's
        live accuracy is at least the floor on enough labels: then it copes with the new traffic (after
        the loop recovers, the traffic still drifts from the frozen holdout, and needs nothing)."""
        reasons = []
        report = self.drift(name)
        serving = self.kept.versions().get(name)
        live = (self.live(name).get(serving) if serving is not None else None) or {}
        floor, needed = self.settings.retrain_accuracy_floor, self.settings.retrain_min_labels
        labelled = live.get("n_labels", 0) >= needed
        if report.get("status") == "drift" and not (labelled and live["accuracy"] >= floor):
            drifted = ", ".join(
                f"{signal} (p = {values['p_value']:.2g})"
                for signal, values in report["signals"].items()
                if values["significant"]
            )
            reasons.append(
                f"drift in {drifted}, below {report['threshold']:.2g} on the last {report['window']} requests"
            )
        if labelled and live["accuracy"] < floor:
            reasons.append(
                f"live accuracy of version {serving} is {live['accuracy']:.1%} on {live['n_labels']} labels, "
                f"below the floor of {floor:.1%}"
            )
        return bool(reasons), reasons

    # -- labels that contradict the serving version --------------------------------------------
    def audited(self, name: str) -> tuple[LabelledRows, LabelAudit]:
        """The labelled feedback of `name` with its inputs, and its audit against the version this worker
        serves (app/label_audit.py); computed again only when a label arrives or the version changes."""
        kept = self.kept.get(name)
        key = (kept and kept.version, self.feedback.newest_labelled(name))
        with self._auditing:
            found = self._audits.get(name)
            if found is not None and found[0] == key:
                return found[1]
            if kept is None:
                rows = self.feedback.labelled_rows(self.kept.models[name])
                result = rows, LabelAudit(NOT_JUDGED, f"{name} is not loaded yet", len(rows), flagged=rows.seqs < 0)
            else:
                metadata = self.kept.stores[name].get(kept.version).metadata
                result = live_holdout.audited(
                    self.feedback, self.kept.models[name], metadata, kept.model.probabilities, self.settings
                )
            self._audits[name] = (key, result)
            return result

    # -- jobs on feedback and the policy ---------------------------------------------------------
    def train_on_feedback(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        kind: str = "fine-tune",
        reasons: list[str] | None = None,
        unless_pending: bool = False,
    ) -> Job:
        """A job of `name` on its labelled feedback with inputs: the rows before the live holdout, less the
        labels the audit flagged (UploadError if none are left). `reasons`: why the policy queued it."""
        rows, verdict = self.audited(name)
        train, boundary, flagged = live_holdout.training_part(rows, verdict, self.settings.live_holdout_share)
        if not len(train):
            if not len(rows):
                raise UploadError(f"no {name} feedback with its input yet: send some with the prediction's input first")
            raise UploadError(f"no {name} feedback left to train on: {verdict.detail}")
        return self.submit(
            kind,
            name,
            parameters or {},
            train.inputs,
            train.labels,
            unless_pending=unless_pending,
            feedback_boundary=boundary,
            n_flagged=flagged,
            retrain_reasons=reasons,
        )

    def policy_state(self, name: str) -> dict[str, str]:
        """What the retrain policy does for `name` now, and why, in words: {"state", "detail"}. "ready"
        means it queues a fine-tune at its next check (at most one every retrain_min_interval)."""

        def state(value: str, detail: str) -> dict[str, str]:
            return {"state": value, "detail": detail}

        if self.settings.retrain_policy != "fine-tune-on-feedback":
            return state("off", "the retrain policy is off (WORKSHOP_RETRAIN_POLICY)")
        if not self.kept.models[name].trainable:
            return state("off", f"{name} is serve-only: nothing here trains it")
        recommended, reasons = self.recommendation(name)
        if not recommended:
            return state("idle", "retraining is not recommended")
        try:
            jobs = [job for job in self.jobs() if job.model == name]
        except QueueUnavailable as error:  # /models/ keeps answering without the queue
            return state("unknown", str(error))
        pending = next((job for job in jobs if job.kind == "fine-tune" and not job.finished), None)
        if pending is not None:
            return state("training", f"fine-tune {pending.id} is {pending.status}: {pending.progress}")
        last = next((job for job in reversed(jobs) if job.feedback_boundary is not None), None)
        if last is not None and last.status == "succeeded":
            since = last.feedback_through if last.feedback_through is not None else last.feedback_boundary
            new, needed = self.feedback.labelled_since(name, since), self.settings.retrain_min_new_labels
            if new < needed:
                outcome = (
                    "its version now serves, and labels must judge it"
                    if last.promoted
                    else f"the gate did not promote it: {last.progress}"
                )
                return state(
                    "waiting",
                    f"after fine-tune {last.id} ({outcome}), the next one waits for {needed} new labels with their "
                    f"inputs, {new} so far",
                )
        rows, verdict = self.audited(name)
        train, _, _ = live_holdout.training_part(rows, verdict, self.settings.live_holdout_share)
        if not len(rows):
            return state("stopped", "retraining is recommended but no feedback with its input came")
        if not len(train):
            return state("stopped", f"retraining is recommended but no feedback is left to train on: {verdict.detail}")
        return state("ready", "; ".join(reasons))

    async def tick(self) -> None:
        """Called by the refresher loop: run the policy every retrain_check_interval seconds."""
        import asyncio

        if self.settings.retrain_policy == "off":
            return
        if time.monotonic() - self._last_policy_check < self.settings.retrain_check_interval:
            return
        self._last_policy_check = time.monotonic()
        await asyncio.to_thread(self.apply_policy)

    def apply_policy(self) -> list[Job]:
        """For each trainable model the policy is ready for (`policy_state`), queue one fine-tune on its
        labelled feedback, at most once every WORKSHOP_RETRAIN_MIN_INTERVAL seconds across all workers;
        returns the jobs queued."""
        queued = []
        for name in self.kept.models:
            if self.policy_state(name)["state"] != "ready":
                continue
            if not self.feedback.claim_retrain(name, self.settings.retrain_min_interval):
                continue
            reasons = self.recommendation(name)[1]
            # unless_pending: if a fine-tune of it is already queued or running, that one stands (one atomic step).
            job = self.train_on_feedback(name, reasons=reasons, unless_pending=True)
            log.info("queued fine-tune %s of %s on %d feedbacks: %s", job.id, name, job.n_images, "; ".join(reasons))
            queued.append(job)
        return queued

    # -- Prometheus -----------------------------------------------------------------------------
    def collect(self):
        """The gauges of /metrics, computed at scrape time (a custom collector)."""
        accuracy = GaugeMetricFamily(
            "workshop_live_accuracy", "Accuracy on labelled feedback, newest window", labels=["model", "version"]
        )
        labels = GaugeMetricFamily(
            "workshop_live_labels", "Labelled feedbacks live accuracy rests on", labels=["model", "version"]
        )
        p_values = GaugeMetricFamily(
            "workshop_drift_p_value", "Drift test p-value, this worker's window", labels=["model", "signal"]
        )
        statistics = GaugeMetricFamily(
            "workshop_drift_statistic", "Drift test statistic, this worker's window", labels=["model", "signal"]
        )
        windows = GaugeMetricFamily(
            "workshop_drift_window", "Live requests in this worker's drift window", labels=["model"]
        )
        recommended = GaugeMetricFamily(
            "workshop_retrain_recommended", "1 when retraining is recommended", labels=["model"]
        )
        for name in self.kept.stores:
            for version, live in self.live(name).items():
                accuracy.add_metric([name, str(version)], live["accuracy"])
                labels.add_metric([name, str(version)], live["n_labels"])
            report = self.drift(name)
            windows.add_metric([name], report.get("window", 0))
            for signal, values in report.get("signals", {}).items():
                p_values.add_metric([name, signal], values["p_value"])
                statistics.add_metric([name, signal], values["statistic"])
            recommended.add_metric([name], int(self.recommendation(name)[0]))
        yield from (accuracy, labels, p_values, statistics, windows, recommended)
