"""Shadow scoring, champion and challenger: a candidate the gate could not judge yet answers a copy of
live requests, never the client, and the labels that come back for those requests decide whether it
serves. Generic over the registry.

- The challenger (kept_models.py): per model, the newest version in shadow (the gate's "challenger",
  neither promoted nor dropped since) newer than the active one; every worker keeps it beside the
  champion.
- Copies (shadow_queue.py): each prediction's rows and ids (every route goes through
  `Monitoring.answered`) are queued, bounded; a thread answers them with the challenger in batches.
- Answers (shadow_records.py): recorded per prediction id in the feedback database.
- The decision: every `shadow_check_interval`, one worker (a claim in the feedback database) pairs
  the labelled requests both answered and compares them with McNemar's exact test
  (app/paired_test.py). Significantly better on at least `shadow_min_labels` labels: promoted
  (pinned active). Significantly worse on as many, or not better after `shadow_max_labels`:
  dropped. The outcome goes into the version's metadata ("shadow": outcome, who, why, the figures)
  by a conditional rewrite (`ModelStore.update_metadata`), so it happens once even if two workers
  decide together; every worker follows within `poll_interval`. An operator can decide instead
  (POST /models/{name}/challenger/promote or /drop).

The statistics come from the shared feedback database (the same from every worker); the queue's
counts are this worker's.
"""

import asyncio
import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from prometheus_client.core import GaugeMetricFamily

from app.paired_test import PairedTest, compare
from app.part3.feedback_records import FeedbackStore
from app.part3.kept_models import KeptModels
from app.part3.settings import Settings
from app.part3.shadow_queue import Copy, ShadowQueue, ShadowScorer
from app.part3.shadow_records import ShadowRecords
from app.store import DROPPED, PROMOTED, SHADOW, Version, in_shadow

log = logging.getLogger(__name__)
CACHE_SECONDS = 1.0
Outcome = str  # PROMOTED or DROPPED


class NoChallenger(LookupError):
    """The model has no challenger in shadow (any more)."""


@dataclass(frozen=True)
class Rules:
    min_labels: int
    max_labels: int
    alpha: float


@dataclass(frozen=True)
class Standing:
    """What the labels say of a challenger so far, and what they would decide."""

    challenger: int
    champion: int
    answered: int
    agreement: float | None
    comparison: PairedTest  # the challenger first, the champion second
    outcome: Outcome | None  # what the rules decide now; None: it waits
    reason: str  # why, or what it waits for, in words


def judge(comparison: PairedTest, rules: Rules) -> tuple[Outcome | None, str]:
    """Promote, drop or wait, and why (see the module docstring)."""
    n = comparison.n
    if n < rules.min_labels:
        return None, f"waits for {rules.min_labels - n} more labelled requests ({n} of the {rules.min_labels} needed)"
    figures = (
        f"on {n} labelled requests it was right on {comparison.first_accuracy:.1%} against the champion's "
        f"{comparison.second_accuracy:.1%} (McNemar's exact test: {comparison.wins} only it got right, "
        f"{comparison.losses} only the champion, p = {comparison.p_better:.2g} that it is better by chance, "
        f"{comparison.p_worse:.2g} that it is worse"
    )
    if comparison.better(rules.alpha):
        return PROMOTED, f"significantly better: {figures} < {rules.alpha:g})"
    if comparison.worse(rules.alpha):
        return DROPPED, f"significantly worse: {figures} < {rules.alpha:g})"
    if n >= rules.max_labels:
        return DROPPED, f"not significantly better in {n} labels: {figures}, not below {rules.alpha:g})"
    return None, (
        f"waits for a significant difference: {figures}, not below {rules.alpha:g}); "
        f"dropped if none within {rules.max_labels - n} more labels"
    )


class Shadow:
    def __init__(self, settings: Settings, kept: KeptModels, feedback: FeedbackStore) -> None:
        self.settings = settings
        self.kept = kept
        self.feedback = feedback
        self.rules = Rules(settings.shadow_min_labels, settings.shadow_max_labels, settings.shadow_alpha)
        self.queue = ShadowQueue(settings.shadow_queue_rows)
        self.records: ShadowRecords = feedback.shadow_records(settings.shadow_kept)
        self.scorer = ShadowScorer(
            self.queue, kept.challenger, self.records.record, settings.shadow_batch_rows, settings.shadow_gather_seconds
        )
        self._cache: dict[str, tuple[float, Standing | None]] = {}
        self._computing = threading.Lock()
        self._last_check = 0.0

    # -- the prediction path --------------------------------------------------------------------
    def offer(self, name: str, version: int, labels: list[str], rows: np.ndarray, ids: list[str]) -> None:
        """A copy of what a prediction answered, for the model's challenger (nothing when it has none)."""
        if self.kept.challengers.get(name) is not None:
            self.queue.offer(Copy(name, version, labels, rows, ids))

    # -- the statistics -------------------------------------------------------------------------
    def standing(self, name: str) -> Standing | None:
        """Where this worker's challenger of `name` stands against the active version (None: no challenger)."""
        with self._computing:
            found = self._cache.get(name)
            if found is not None and time.monotonic() - found[0] < CACHE_SECONDS:
                return found[1]
        standing = self._standing(name)
        with self._computing:
            self._cache[name] = (time.monotonic(), standing)
        return standing

    def _standing(self, name: str) -> Standing | None:
        kept = self.kept.challenger(name)
        champion = self.kept.stores[name].active()
        if kept is None or champion is None:
            return None
        labelled = self.records.labelled(name, kept.version, champion)
        truth = np.array(labelled.labels, dtype=object)
        comparison = compare(
            truth, np.array(labelled.challenger, dtype=object), np.array(labelled.champion, dtype=object)
        )
        agreement = self.records.agreement(name, kept.version, champion)
        outcome, reason = judge(comparison, self.rules)
        return Standing(kept.version, champion, agreement.answered, agreement.agreement, comparison, outcome, reason)

    def forget(self, name: str) -> None:
        with self._computing:
            self._cache.pop(name, None)

    def report(self, name: str) -> dict[str, Any] | None:
        """The challenger in GET /models/: its version, agreement, both accuracies on the same labels, the
        test's figures and what it waits for; this worker's queue."""
        problem = self.kept.challenger_problems.get(name)
        standing = self.standing(name)
        if standing is None:
            if problem is None:
                return None
            return {"version": problem[0], "status": "not loaded", "detail": problem[1]}
        comparison = standing.comparison
        return {
            "version": standing.challenger,
            "status": "in shadow",
            "champion": standing.champion,
            "answered": standing.answered,
            "agreement": standing.agreement,
            "n_labels": comparison.n,
            "accuracy": comparison.first_accuracy,
            "champion_accuracy": comparison.second_accuracy,
            "test": {
                "name": "McNemar's exact test",
                "only_challenger_right": comparison.wins,
                "only_champion_right": comparison.losses,
                "p_better": comparison.p_better,
                "p_worse": comparison.p_worse,
                **asdict(self.rules),
            },
            "decision": standing.outcome,
            "detail": standing.reason,
            "this_worker": {
                "queued_rows": self.queue.rows,
                "answered_rows": self.scorer.answered[name],
                "dropped_rows": self.queue.dropped[name],
                "failed_rows": self.scorer.failed[name],
            },
        }

    # -- deciding -------------------------------------------------------------------------------
    async def tick(self) -> list[Version]:
        """Called by the refresher loop: check the challengers every shadow_check_interval seconds."""
        if time.monotonic() - self._last_check < self.settings.shadow_check_interval:
            return []
        self._last_check = time.monotonic()
        return await asyncio.to_thread(self.check)

    def check(self) -> list[Version]:
        """Promote or drop each challenger whose labels decide (one worker per interval: a claim)."""
        decided = []
        for name in self.kept.stores:
            if self.kept.challenger(name) is None:
                continue
            if not self.feedback.claim(f"shadow {name}", self.settings.shadow_check_interval * 0.9):
                continue
            self.forget(name)
            standing = self.standing(name)
            if standing is None or standing.outcome is None:
                continue
            try:
                decided.append(self.decide(name, standing.outcome, "the live labels", standing))
            except NoChallenger:  # another worker or an operator decided first
                continue
        return decided

    def decide(self, name: str, outcome: Outcome, by: str, standing: Standing | None = None) -> Version:
        """Write the outcome into the challenger's metadata, once (NoChallenger if it is no longer in
        shadow), and for a promotion pin it active. The caller refreshes the kept models."""
        kept = self.kept.challenger(name)
        if kept is None:
            raise NoChallenger(f"{name} has no challenger in shadow")
        standing = standing or self._standing(name)
        entry: dict[str, Any] = {
            "outcome": outcome,
            "by": by,
            "reason": standing.reason if standing is not None and by == "the live labels" else f"{outcome} by {by}",
            "decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if standing is not None:
            entry |= {
                "champion": standing.champion,
                "n_labels": standing.comparison.n,
                "accuracy": standing.comparison.first_accuracy,
                "champion_accuracy": standing.comparison.second_accuracy,
                "agreement": standing.agreement,
                "p_better": standing.comparison.p_better,
                "p_worse": standing.comparison.p_worse,
            }
        store = self.kept.stores[name]
        version = store.update_metadata(
            kept.version, lambda current: {**current, SHADOW: entry} if in_shadow(current) else None
        )
        if version is None:
            raise NoChallenger(f"{name} version {kept.version} is no longer in shadow")
        if outcome == PROMOTED:
            store.activate(kept.version)
        log.info("%s version %s %s by %s: %s", name, kept.version, outcome, by, entry["reason"])
        self.forget(name)
        return version

    # -- Prometheus -----------------------------------------------------------------------------
    def collect(self):
        """The challengers' gauges of /metrics, computed at scrape time."""
        agreement = GaugeMetricFamily(
            "workshop_challenger_agreement",
            "Share of live requests a challenger answered as the champion did",
            labels=["model", "version"],
        )
        accuracy = GaugeMetricFamily(
            "workshop_challenger_live_accuracy",
            "A challenger's accuracy on the labelled requests it answered in shadow",
            labels=["model", "version"],
        )
        champion = GaugeMetricFamily(
            "workshop_challenger_champion_accuracy",
            "The champion's accuracy on the same labelled requests",
            labels=["model", "version"],
        )
        labels = GaugeMetricFamily(
            "workshop_challenger_labels",
            "Labelled requests a challenger answered in shadow",
            labels=["model", "version"],
        )
        for name in self.kept.stores:
            standing = self.standing(name)
            if standing is None:
                continue
            series = [name, str(standing.challenger)]
            labels.add_metric(series, standing.comparison.n)
            if standing.agreement is not None:
                agreement.add_metric(series, standing.agreement)
            comparison = standing.comparison
            if comparison.first_accuracy is not None and comparison.second_accuracy is not None:
                accuracy.add_metric(series, comparison.first_accuracy)
                champion.add_metric(series, comparison.second_accuracy)
        yield from (agreement, accuracy, champion, labels)
