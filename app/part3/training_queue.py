"""The training queue (Huey) and the job records beside it, chosen by settings.

    no WORKSHOP_QUEUE_URL    SqliteHuey on <models>/.queue.sqlite3, job records in a table of the same
                             file: no server, one machine (the service starts the one trainer)
    redis://host:port/db     RedisHuey and job records in that Redis: trainers on any machine

Each submission stores its job record, then enqueues one `training_turn` task. A trainer running a
turn waits for the `training` lock (Huey's lock_task: one training at a time across every trainer)
and then runs the OLDEST queued job, not necessarily the one that enqueued the turn: with several
trainers each taking a turn from the queue, jobs still run in submission order. A turn lost with a
dead trainer (Huey's delivery is at most once) is made up by the next turn or by the trainers'
periodic turn, since a turn always looks at the records.
"""

import sqlite3
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import redis
from huey import RedisExpireHuey, SqliteHuey, crontab
from huey.api import Huey

from app.part3.job_records import JobRecords, RedisJobRecords, SqliteJobRecords
from app.part3.settings import Settings

QUEUE_NAME = "workshop"
LOCK_NAME = "training"
# What an unreachable queue raises: the API answers 503 naming the queue, never a 500.
QUEUE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, sqlite3.OperationalError)


class QueueUnavailable(RuntimeError):
    """The queue's storage cannot be reached (Redis down, or the SQLite file locked or unwritable)."""


def without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


class TrainingQueue:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.queue_url:
            self.where = f"the training queue at {without_password(settings.queue_url)}"
            client = redis.Redis.from_url(settings.queue_url, socket_connect_timeout=2, socket_timeout=10)
            # RedisExpireHuey: its locks are plain keys with an expiry (SET NX EX) on any Redis; plain
            # RedisHuey keeps them in one hash, whose field expiry needs Redis 7.4. No results are kept.
            self.huey: Huey = RedisExpireHuey(QUEUE_NAME, connection_pool=client.connection_pool, results=False)
            self.records: JobRecords = RedisJobRecords(client)
            self.lock_ttl: int | None = max(1, round(settings.heartbeat_timeout))
        else:
            self.where = f"the training queue in {settings.queue_file}"
            settings.queue_file.parent.mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey(QUEUE_NAME, filename=str(settings.queue_file), results=False, timeout=30)
            self.records = SqliteJobRecords(settings.queue_file, settings.jobs_dir)
            self.lock_ttl = None  # SQLite locks cannot expire: the one trainer clears them when it starts
        self.training_lock = self.huey.lock_task(LOCK_NAME, ttl=self.lock_ttl)
        self.take_turn: Callable[[str], None] = lambda reason: None  # the trainer sets the real one
        self.turn = self.huey.task(name="training_turn")(lambda reason: self.take_turn(reason))
        self.huey.periodic_task(crontab(minute="*"), name="periodic_training_turn")(lambda: self.take_turn("periodic"))

    @property
    def distributed(self) -> bool:
        return self.settings.queue_url is not None

    def enqueue_turn(self, reason: str) -> None:
        self.turn(reason)

    def refresh_lock(self) -> None:
        """Push the training lock's expiry back by its ttl: the holder is alive (Redis only).

        Relies on RedisExpireStorage's private key layout (`storage.result_key`), as Huey has no
        public call to extend a lock; tests/part3/test_part3_queue.py fails if that changes."""
        if self.lock_ttl is not None:
            storage = self.huey.storage
            storage.conn.expire(storage.result_key(self.training_lock._key), self.lock_ttl)

    def unavailable(self, error: Exception) -> QueueUnavailable:
        return QueueUnavailable(f"{self.where} is unreachable ({type(error).__name__}: {error}); try again later")
