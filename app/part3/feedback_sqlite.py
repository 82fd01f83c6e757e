"""Labelled feedback and the shadow answers in SQLite: `<models dir>/.feedback.sqlite3` (WAL), the
embedded default (feedback_records.py says what is kept). Every worker on one host opens the same
file (SQLite locks it across processes); the shadow answers are a table of their own in it.

    feedback        one row per labelled prediction (`seq` AUTOINCREMENT: the arrival order), its input
                    a BLOB of the model's dtype
    retrain_claims  when each periodic piece of work was last claimed
    shadow_answers  one row per live request a challenger answered, under the feedback's `id`
"""

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.modelkit import Model
from app.part3.feedback_records import FeedbackStore, LabelledRows, LiveAccuracy, NewFeedback, conflict
from app.part3.shadow_queue import ShadowAnswer
from app.part3.shadow_records import Agreement, Labelled, ShadowRecords

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

SHADOW_SCHEMA = """
CREATE TABLE IF NOT EXISTS shadow_answers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    predicted TEXT NOT NULL,
    challenger INTEGER NOT NULL,
    answer TEXT NOT NULL,
    answered_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_by_challenger ON shadow_answers (model, challenger, version);
CREATE INDEX IF NOT EXISTS shadow_by_model ON shadow_answers (model, seq);
"""


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


class SqliteFeedbackStore(FeedbackStore):
    def __init__(self, models_dir: Path, keep: int) -> None:
        self.path = Path(models_dir) / FEEDBACK_FILE
        self.where = f"the feedback in {self.path}"
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

    def _insert(self, feedback: NewFeedback) -> bool:
        f = feedback
        with self._lock, write_transaction(self._connect()) as db:  # the check and the insert as one
            row = db.execute("SELECT label FROM feedback WHERE id = ?", (f.key,)).fetchone()
            if row is not None:
                if row[0] != f.label:
                    raise conflict(row[0])
                return False
            db.execute(
                "INSERT INTO feedback"
                " (id, model, version, predicted, label, correct, predicted_at, received_at, input)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (f.key, f.model, f.version, f.predicted, f.label, f.correct, f.predicted_at, time.time(), f.input),
            )
            keep_newest(db, "feedback", f.model, self.keep)
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
        return LabelledRows.of(model, rows)

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

    def shadow_records(self, keep: int) -> "SqliteShadowRecords":
        return SqliteShadowRecords(self, keep)

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


class SqliteShadowRecords(ShadowRecords):
    def __init__(self, feedback: "SqliteFeedbackStore", keep: int) -> None:
        self.feedback = feedback
        self.keep = keep
        self._schema_on: sqlite3.Connection | None = None

    @contextmanager
    def _database(self) -> Iterator[sqlite3.Connection]:
        with self.feedback.connection() as db:
            if db is not self._schema_on:  # once per connection (the feedback store may reopen it)
                db.executescript(SHADOW_SCHEMA)
                self._schema_on = db
            yield db

    def record(self, answers: list[ShadowAnswer]) -> None:
        """Store a batch of shadow answers (a request answered twice is stored once), then keep only the
        newest `keep` of each model."""
        now = time.time()
        with self._database() as db, write_transaction(db):
            db.executemany(
                "INSERT OR IGNORE INTO shadow_answers"
                " (id, model, version, predicted, challenger, answer, answered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(a.key, a.model, a.version, a.predicted, a.challenger, a.answer, now) for a in answers],
            )
            for model in {answer.model for answer in answers}:
                keep_newest(db, "shadow_answers", model, self.keep)

    def labelled(self, model: str, challenger: int, champion: int) -> Labelled:
        """Every labelled request `challenger` answered in shadow of `champion`, with both answers."""
        if not self.feedback.path.exists():  # nothing yet; reading must not create the database
            return Labelled([], [], [])
        with self._database() as db:
            rows = db.execute(
                "SELECT f.predicted, s.answer, f.label FROM shadow_answers s JOIN feedback f ON f.id = s.id"
                " WHERE s.model = ? AND s.challenger = ? AND s.version = ? AND f.version = s.version ORDER BY f.seq",
                (model, challenger, champion),
            ).fetchall()
        return Labelled([row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows])

    def agreement(self, model: str, challenger: int, champion: int) -> Agreement:
        if not self.feedback.path.exists():
            return Agreement(0, None)
        with self._database() as db:
            count, same = db.execute(
                "SELECT COUNT(*), AVG(predicted = answer) FROM shadow_answers"
                " WHERE model = ? AND challenger = ? AND version = ?",
                (model, challenger, champion),
            ).fetchone()
        return Agreement(count, None if same is None else float(same))

    def count(self, model: str) -> int:
        if not self.feedback.path.exists():
            return 0
        with self._database() as db:
            return db.execute("SELECT COUNT(*) FROM shadow_answers WHERE model = ?", (model,)).fetchone()[0]
