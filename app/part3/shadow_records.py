"""What the challengers answered in shadow, kept beside the labelled feedback: a table of its own in the
same SQLite file (feedback_records.py), so every worker reads the same figures.

    shadow_answers: one row per live request a challenger answered, under its prediction id's key (the
                    feedback table's `id`), with the champion's version and answer and the challenger's.

The labels come later, through POST /feedback/: joined on the key, the two tables give, for every
labelled request both answered, (the champion's answer, the challenger's, the true label). Bounded:
after each batch only the newest `keep` rows of each model remain.
"""

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.part3.feedback_records import FeedbackStore, keep_newest, write_transaction
from app.part3.shadow_queue import ShadowAnswer

SCHEMA = """
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


@dataclass(frozen=True)
class Labelled:
    """The labelled requests a challenger and a champion both answered, oldest label first."""

    champion: list[str]
    challenger: list[str]
    labels: list[str]


@dataclass(frozen=True)
class Agreement:
    answered: int  # requests the challenger answered in shadow of this champion (the newest kept)
    agreement: float | None  # the share of them it answered as the champion did


class ShadowRecords:
    def __init__(self, feedback: FeedbackStore, keep: int) -> None:
        self.feedback = feedback
        self.keep = keep
        self._schema_on: sqlite3.Connection | None = None

    @contextmanager
    def _database(self) -> Iterator[sqlite3.Connection]:
        with self.feedback.connection() as db:
            if db is not self._schema_on:  # once per connection (the feedback store may reopen it)
                db.executescript(SCHEMA)
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
