"""Copies of live requests for the challengers: a bounded queue the prediction path fills, and the
thread that answers them with each model's challenger, in batches, and records its answers.

The prediction path only appends a copy (a lock and an append, and only while the model has a
challenger); it never waits for the challenger and never sees its answers. A full queue drops the
copy and counts it. The scorer is a thread of its own, off the event loop: it lets copies gather for
a moment, runs the challenger once on all of a model's rows (ONNX Runtime releases the GIL meanwhile)
and hands the answers to `record` (the feedback database). A challenger that fails is logged and its
copies counted as failed: no request ever depends on it.
"""

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.part3.kept_models import Kept

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Copy:
    """What one prediction answered, for its challenger."""

    model: str
    version: int  # the champion that answered the client
    labels: list[str]  # the champion's answers
    rows: np.ndarray  # the rows it answered, in the model's input form
    ids: list[str]  # their prediction ids


@dataclass(frozen=True)
class ShadowAnswer:
    """One request a challenger answered, named by its prediction id's key (as the feedback is)."""

    key: str
    model: str
    version: int  # the champion's
    predicted: str  # the champion's answer, the one the client got
    challenger: int
    answer: str  # the challenger's, recorded only


def key_of(prediction_id: str) -> str:
    """The signed part of a prediction id: the key its feedback is stored under (prediction_ids.py)."""
    return prediction_id.rpartition(".")[0]


class ShadowQueue:
    """Copies waiting for the scorer, at most `max_rows` rows in all; `dropped` counts the rows refused
    per model."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.rows = 0
        self.dropped: Counter[str] = Counter()
        self.waiting = threading.Event()  # set while copies wait
        self._copies: deque[Copy] = deque()
        self._lock = threading.Lock()

    def offer(self, copy: Copy) -> bool:
        """Queue `copy` unless that would hold more than `max_rows` rows (then it is dropped, counted)."""
        size = len(copy.ids)
        with self._lock:
            if self.rows + size > self.max_rows:
                self.dropped[copy.model] += size
                return False
            self._copies.append(copy)
            self.rows += size
        if not self.waiting.is_set():
            self.waiting.set()
        return True

    def take(self, max_rows: int) -> list[Copy]:
        """The oldest copies, up to `max_rows` rows (at least one copy while any waits)."""
        taken: list[Copy] = []
        with self._lock:
            size = 0
            while self._copies and (not taken or size + len(self._copies[0].ids) <= max_rows):
                copy = self._copies.popleft()
                taken.append(copy)
                size += len(copy.ids)
            self.rows -= size
            if not self._copies:
                self.waiting.clear()
        return taken


class ShadowScorer:
    """The thread that answers queued copies with each model's challenger (see the module docstring)."""

    def __init__(
        self,
        queue: ShadowQueue,
        challenger: Callable[[str], Kept | None],
        record: Callable[[list[ShadowAnswer]], None],
        batch_rows: int,
        gather_seconds: float,
    ) -> None:
        self.queue = queue
        self.challenger = challenger
        self.record = record
        self.batch_rows = batch_rows
        self.gather_seconds = gather_seconds
        self.answered: Counter[str] = Counter()  # rows, per model
        self.failed: Counter[str] = Counter()
        self._failing: set[tuple[str, int]] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.queue.waiting.set()  # wake it
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.queue.waiting.wait()
            if self._stopping.wait(self.gather_seconds):  # let the copies of the next moment join this batch
                return
            while copies := self.queue.take(self.batch_rows):
                try:
                    self.score(copies)
                except Exception:  # whatever it was, the thread goes on with the next copies
                    log.exception("shadow scoring failed")

    def score(self, copies: list[Copy]) -> list[ShadowAnswer]:
        """Answer `copies` with their models' challengers and record the answers; never raises."""
        answers: list[ShadowAnswer] = []
        for name in dict.fromkeys(copy.model for copy in copies):
            answers += self._answer(name, [copy for copy in copies if copy.model == name])
        if answers:
            try:
                self.record(answers)
            except Exception:  # e.g. the database locked for too long: these answers are lost, not the worker
                log.exception("could not record %d shadow answers", len(answers))
                return []
        return answers

    def _answer(self, name: str, copies: list[Copy]) -> list[ShadowAnswer]:
        kept = self.challenger(name)
        if kept is None:  # dropped or promoted since these were queued
            return []
        rows = sum(len(copy.ids) for copy in copies)
        try:
            labels = kept.model.predict(np.concatenate([copy.rows for copy in copies]))
        except Exception:
            if (name, kept.version) not in self._failing:  # once per version, not once per batch
                self._failing.add((name, kept.version))
                log.exception("%s challenger version %s failed; the champion answers as before", name, kept.version)
            self.failed[name] += rows
            return []
        self.answered[name] += rows
        answers = iter(labels)
        return [
            ShadowAnswer(key_of(prediction_id), name, copy.version, predicted, kept.version, next(answers))
            for copy in copies
            for prediction_id, predicted in zip(copy.ids, copy.labels, strict=True)
        ]
