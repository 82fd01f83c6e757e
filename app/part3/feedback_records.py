"""Labelled feedback, kept durably in the store: `<models dir>/.feedback.sqlite3` (SQLite, WAL).

Every worker writes and reads the same file (SQLite locks it across processes on one host), so
every worker reports the same live accuracy. Bounded: after each insert only the newest `keep`
rows of that model remain. The input that was predicted, when sent back with its label (a digit's
image, a row of measurements), is kept as its row in the model's input form (the raw bytes of the
model's dtype, a BLOB), never under an uploaded name, so a fine-tune can train on it. The rows that
came with their input, in arrival order, are split for jobs on feedback: the oldest are trained on,
the newest share (the live holdout) only judged on (`training_boundary`).

One feedback per prediction: the same label again is accepted and changes nothing (a client may
retry); another label for the same prediction is a conflict (409).
"""

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.modelkit import Model

FEEDBACK_FILE = ".feedback.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    predicted TEXT NOT NULL,
    label TEXT NOT NULL,
    correct INTEGER NOT NULL,
    predicted_at REAL NOT NULL,
    received_at REAL NOT NULL,
    input BLOB
);
CREATE INDEX IF NOT EXISTS feedback_by_model ON feedback (model, seq);
CREATE TABLE IF NOT EXISTS retrain_claims (model TEXT PRIMARY KEY, claimed_at REAL NOT NULL);
"""


class ConflictingFeedback(ValueError):
    """This prediction already has feedback with another label."""


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that holds the database's write lock from its start (BEGIN IMMEDIATE), so a
    check and the write it decides are one step across processes; rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    if db.in_transaction:
        db.execute("COMMIT")


def keep_newest(db: sqlite3.Connection, table: str, model: str, keep: int) -> None:
    """Delete all but the newest `keep` rows of `model` in `table` (a table with `seq` and `model`)."""
    db.execute(
        f"DELETE FROM {table} WHERE model = ? AND seq <= "
        f"(SELECT seq FROM {table} WHERE model = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
        (model, model, keep),
    )


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


@dataclass(frozen=True)
class LiveAccuracy:
    accuracy: float | None
    n_labels: int
    window: int


class FeedbackStore:
    def __init__(self, models_dir: Path, keep: int) -> None:
        self.path = Path(models_dir) / FEEDBACK_FILE
        self.keep = keep
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        # Opened on first use (not at import or start-up): a read-only deployment never creates it.
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            columns = {row[1] for row in connection.execute("PRAGMA table_info(feedback)")}
            if "image" in columns:  # a table from before any model could send its input: same bytes
                connection.execute("ALTER TABLE feedback RENAME COLUMN image TO input")
            connection.executescript(SCHEMA)
            self._connection = connection
        return self._connection

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
        was already stored (nothing changes)."""
        data = None if row is None else np.ascontiguousarray(row).tobytes()
        with self._lock, write_transaction(self._connect()) as db:  # the check and the insert as one
            row = db.execute("SELECT label FROM feedback WHERE id = ?", (key,)).fetchone()
            if row is not None:
                if row[0] != label:
                    raise ConflictingFeedback(
                        f"this prediction already has feedback with label {row[0]!r}; one label per prediction"
                    )
                return False
            db.execute(
                "INSERT INTO feedback"
                " (id, model, version, predicted, label, correct, predicted_at, received_at, input)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model, version, predicted, label, int(predicted == label), predicted_at, time.time(), data),
            )
            keep_newest(db, "feedback", model, self.keep)
        return True

    def count(self, model: str | None = None) -> int:
        with self._lock:
            query, parameters = (
                ("SELECT COUNT(*) FROM feedback", ())
                if model is None
                else ("SELECT COUNT(*) FROM feedback WHERE model = ?", (model,))
            )
            return self._connect().execute(query, parameters).fetchone()[0]

    def live_accuracy(self, model: str, window: int, left_out: Sequence[int] = ()) -> dict[int, LiveAccuracy]:
        """Per version of `model`: the accuracy of its answers on its newest `window` labelled feedbacks,
        leaving out the rows whose place in the arrival order is in `left_out` (labels the audit flagged)."""
        if not self.path.exists():
            return {}
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    "SELECT version, AVG(correct), COUNT(*) FROM ("
                    " SELECT version, correct, ROW_NUMBER() OVER (PARTITION BY version ORDER BY seq DESC) AS newest"
                    " FROM feedback WHERE model = ? AND seq NOT IN (SELECT value FROM json_each(?)))"
                    " WHERE newest <= ? GROUP BY version",
                    (model, json.dumps([int(seq) for seq in left_out]), window),
                )
                .fetchall()
            )
        return {version: LiveAccuracy(float(accuracy), count, window) for version, accuracy, count in rows}

    def labelled_rows(self, model: Model, after: int | None = None, through: int | None = None) -> LabelledRows:
        """The kept labelled feedback of `model` that came with its input, oldest first, with each row's
        place in the arrival order: only the rows after `after` and through `through` when given."""
        query = "SELECT seq, input, label FROM feedback WHERE model = ? AND input IS NOT NULL"
        parameters: list[Any] = [model.name]
        if after is not None:
            query, parameters = query + " AND seq > ?", [*parameters, after]
        if through is not None:
            query, parameters = query + " AND seq <= ?", [*parameters, through]
        with self._lock:
            rows = self._connect().execute(query + " ORDER BY seq", parameters).fetchall()
        dtype, shape = model.input.dtype, model.input.row_shape
        inputs = np.frombuffer(b"".join(data for _, data, _ in rows), dtype=dtype).reshape(-1, *shape)
        labels = np.array([model.classes.index(label) for _, _, label in rows], dtype=np.int64)
        return LabelledRows(inputs.copy(), labels, np.array([seq for seq, _, _ in rows], dtype=np.int64))

    def training_examples(self, model: Model) -> tuple[np.ndarray, np.ndarray]:
        """Every kept labelled feedback of `model` that came with its input, oldest first, as rows in the
        model's input form and class indices."""
        rows = self.labelled_rows(model)
        return rows.inputs, rows.labels

    def newest_labelled(self, model: str) -> int | None:
        """The place in the arrival order of the newest labelled row with its input (None: none yet)."""
        with self._lock:
            return (
                self._connect()
                .execute("SELECT MAX(seq) FROM feedback WHERE model = ? AND input IS NOT NULL", (model,))
                .fetchone()[0]
            )

    def labelled_since(self, model: str, after: int | None) -> int:
        """How many labelled rows with their input came after row `after` (every one for None)."""
        with self._lock:
            return (
                self._connect()
                .execute(
                    "SELECT COUNT(*) FROM feedback WHERE model = ? AND input IS NOT NULL AND seq > ?",
                    (model, -1 if after is None else after),
                )
                .fetchone()[0]
            )

    def claim_retrain(self, model: str, min_interval: float) -> bool:
        """True for one caller at most every `min_interval` seconds across all workers (the policy's
        rate limit)."""
        return self.claim(model, min_interval)

    def claim(self, what: str, min_interval: float) -> bool:
        """True for one caller at most every `min_interval` seconds across all workers, for each `what`
        (the retrain policy claims a model's name; other periodic work names itself, "shadow <model>")."""
        now = time.time()
        with self._lock:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT claimed_at FROM retrain_claims WHERE model = ?", (what,)).fetchone()
            if row is not None and now - row[0] < min_interval:
                db.execute("ROLLBACK")
                return False
            db.execute("INSERT OR REPLACE INTO retrain_claims (model, claimed_at) VALUES (?, ?)", (what, now))
            db.execute("COMMIT")
        return True

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The database under this store's lock, for a module that keeps a table of its own beside the
        feedback (shadow_records.py): one file, one connection per process."""
        with self._lock:
            yield self._connect()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
