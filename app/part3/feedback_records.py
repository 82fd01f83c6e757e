"""Labelled feedback: what every backend keeps and answers, and the shapes it answers in.

    feedback_sqlite.py   SqliteFeedbackStore: `<models dir>/.feedback.sqlite3` (WAL), the embedded default
    feedback_redis.py    RedisFeedbackStore: the queue's Redis, for workers on several machines
    feedback_backends.py open_feedback(settings): the one the settings name

Every worker writes and reads the same records, so every worker reports the same live accuracy.
Bounded: after each insert only the newest `keep` rows of that model remain. The input that was
predicted, when sent back with its label (a digit's image, a row of measurements), is kept as its row
in the model's input form (the raw bytes of the model's dtype), never under an uploaded name, so a
fine-tune can train on it. Each row has its place in the arrival order (`seq`, increasing across all
models). The rows that came with their input, in arrival order, are split for jobs on feedback: the
oldest are trained on, the newest share (the live holdout) only judged on (`training_boundary`).

One feedback per prediction: the same label again is accepted and changes nothing (a client may
retry); another label for the same prediction is a conflict (409).
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.modelkit import Model
from app.part3.shadow_records import ShadowRecords


class ConflictingFeedback(ValueError):
    """This prediction already has feedback with another label."""


def conflict(label: str) -> ConflictingFeedback:
    return ConflictingFeedback(f"this prediction already has feedback with label {label!r}; one label per prediction")


@dataclass(frozen=True)
class LabelledRows:
    """Labelled feedback with its inputs, oldest first: rows in the model's input form, class indices, and
    each row's place in the arrival order (`seqs`, increasing; the live holdout's boundary is one)."""

    inputs: np.ndarray
    labels: np.ndarray
    seqs: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def where(self, keep: np.ndarray) -> "LabelledRows":
        return LabelledRows(self.inputs[keep], self.labels[keep], self.seqs[keep])

    def training_boundary(self, holdout_share: float) -> int | None:
        """Where a job on these rows stops: the newest row it may train on. The newest `holdout_share`
        of the rows (by arrival) are the live holdout, which it never trains on; the oldest are trained
        on (at least one). None when there are no rows."""
        if not len(self):
            return None
        return int(self.seqs[max(1, len(self) - int(len(self) * holdout_share)) - 1])

    @staticmethod
    def of(model: Model, rows: Sequence[tuple[int, bytes, str]]) -> "LabelledRows":
        """From stored (seq, input bytes, label) rows, oldest first."""
        dtype, shape = model.input.dtype, model.input.row_shape
        inputs = np.frombuffer(b"".join(data for _, data, _ in rows), dtype=dtype).reshape(-1, *shape)
        labels = np.array([model.classes.index(label) for _, _, label in rows], dtype=np.int64)
        return LabelledRows(inputs.copy(), labels, np.array([seq for seq, _, _ in rows], dtype=np.int64))


@dataclass(frozen=True)
class LiveAccuracy:
    accuracy: float | None
    n_labels: int
    window: int


@dataclass(frozen=True)
class NewFeedback:
    key: str
    model: str
    version: int
    predicted: str
    label: str
    predicted_at: float
    input: bytes | None  # the row's raw bytes in the model's dtype

    @property
    def correct(self) -> int:
        return int(self.predicted == self.label)


class FeedbackStore(ABC):
    """What the service, the policy, the trainer and the shadow scoring do with labelled feedback."""

    keep: int
    where: str  # named in the 503 when it cannot be reached

    def record(
        self,
        key: str,
        model: str,
        version: int,
        predicted: str,
        label: str,
        predicted_at: float,
        row: np.ndarray | None = None,
    ) -> bool:
        """Store one feedback, with the predicted input's row if sent; False when this exact feedback
        was already stored (nothing changes); ConflictingFeedback when it has another label."""
        data = None if row is None else np.ascontiguousarray(row).tobytes()
        return self._insert(NewFeedback(key, model, version, predicted, label, predicted_at, data))

    @abstractmethod
    def _insert(self, feedback: NewFeedback) -> bool:
        """`record`'s work: the check, the insert and the trim to `keep` as one step across processes."""

    @abstractmethod
    def count(self, model: str | None = None) -> int: ...

    @abstractmethod
    def live_accuracy(self, model: str, window: int, left_out: Sequence[int] = ()) -> dict[int, LiveAccuracy]:
        """Per version of `model`: the accuracy of its answers on its newest `window` labelled feedbacks,
        leaving out the rows whose place in the arrival order is in `left_out` (labels the audit flagged)."""

    @abstractmethod
    def labelled_rows(self, model: Model, after: int | None = None, through: int | None = None) -> LabelledRows:
        """The kept labelled feedback of `model` that came with its input, oldest first, with each row's
        place in the arrival order: only the rows after `after` and through `through` when given."""

    @abstractmethod
    def newest_labelled(self, model: str) -> int | None:
        """The place in the arrival order of the newest labelled row with its input (None: none yet)."""

    @abstractmethod
    def labelled_since(self, model: str, after: int | None) -> int:
        """How many labelled rows with their input came after row `after` (every one for None)."""

    @abstractmethod
    def claim(self, what: str, min_interval: float) -> bool:
        """True for one caller at most every `min_interval` seconds across all workers, for each `what`
        (the retrain policy claims a model's name; other periodic work names itself, "shadow <model>")."""

    @abstractmethod
    def shadow_records(self, keep: int) -> ShadowRecords:
        """The challengers' answers in shadow, kept beside this feedback (joined with it by key)."""

    @abstractmethod
    def close(self) -> None: ...

    def training_examples(self, model: Model) -> tuple[np.ndarray, np.ndarray]:
        """Every kept labelled feedback of `model` that came with its input, oldest first, as rows in the
        model's input form and class indices."""
        rows = self.labelled_rows(model)
        return rows.inputs, rows.labels

    def claim_retrain(self, model: str, min_interval: float) -> bool:
        """True for one caller at most every `min_interval` seconds across all workers (the policy's
        rate limit)."""
        return self.claim(model, min_interval)
