"""The training jobs' records: one table beside the queue, read alike by every API process and trainer.

    SqliteJobRecords   a `jobs` table in the queue's SQLite file in the models folder (WAL mode):
                       the embedded default, one machine
    RedisJobRecords    a string per job and a sorted set by submission sequence (INCR), in the
                       queue's Redis: the distributed mode

Both keep submission order (the sequence is given and made visible in one step, so a job never
appears before one submitted earlier), update a job by an atomic read-modify-write (no lost
update), and keep a job's uploaded examples (an .npz) under the job's id: SQLite's in a file of the
models folder, Redis's in Redis itself, so in the distributed mode nothing needs a shared folder.
"""

import io
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import redis

from app.part3.job_status import FINISHED, JOB_ID, Job, JobKind, JobNotFound, JobStatus, now

NOT_STORED = {"sequence", "progress"}  # the sequence is the table's own; progress is computed
TEMP_PREFIX = ".tmp-"
Condition = Callable[[Job], bool]


class JobRecords:
    """What the service and the trainers do with jobs; the backends store them."""

    # -- the backend's part -------------------------------------------------------------------
    def _insert(self, job: Job, unless_pending: bool) -> Job:
        """Store a new job with the next sequence number; with `unless_pending`, if a job of the same kind
        and model is unfinished, store nothing and return that job instead (both in one atomic step)."""
        raise NotImplementedError

    def get(self, job_id: str) -> Job:
        raise NotImplementedError

    def all(self) -> list[Job]:
        """Every job, in submission order."""
        raise NotImplementedError

    def update(self, job_id: str, when: Condition | None = None, **changes: Any) -> Job:
        """Write `changes` into the job, atomically, if `when(job)` holds (always, without it);
        returns the job as it now is."""
        raise NotImplementedError

    def remove(self, job_ids: list[str]) -> None:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def submit(
        self,
        kind: JobKind,
        model: str | None,
        parameters: dict[str, Any] | None = None,
        inputs: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        unless_pending: bool = False,
        **fields: Any,
    ) -> Job:
        """Queue a job; its examples are stored first, so a visible job always has its data. With
        `unless_pending`, a job of the same kind and model that has not finished stands instead.
        `fields` are more of the job's own (e.g. a job on feedback's `feedback_boundary`)."""
        job_id = uuid.uuid4().hex
        if inputs is not None and labels is not None:
            self._save_data(job_id, inputs, labels)
        parameters = parameters or {}
        job = Job(
            id=job_id,
            kind=kind,
            model=model,
            parameters=parameters,
            submitted_at=now(),
            epochs=int(parameters.get("epochs", 0)),
            n_images=0 if labels is None else len(labels),
            **fields,
        )
        stored = self._insert(job, unless_pending)
        if stored.id != job_id:
            self.discard_data(job_id)
        return stored

    def count(self, status: JobStatus) -> int:
        return sum(job.status == status for job in self.all())

    def next_queued(self) -> Job | None:
        return next((job for job in self.all() if job.status == "queued"), None)

    def prune(self, keep: int) -> list[str]:
        """Remove the oldest finished jobs beyond the newest `keep` finished ones; returns their ids."""
        finished = [job for job in self.all() if job.finished]
        removed = [job.id for job in finished[: max(0, len(finished) - keep)]]
        if removed:
            self.remove(removed)
            for job_id in removed:
                self.discard_data(job_id)
        return removed

    # -- a job's examples, stored before the job is visible, named by its id -------------------
    def _write_examples(self, job_id: str, data: bytes) -> None:
        raise NotImplementedError

    def _read_examples(self, job_id: str) -> bytes | None:
        raise NotImplementedError

    def _discard_examples(self, job_id: str) -> None:
        raise NotImplementedError

    def _save_data(self, job_id: str, inputs: np.ndarray, labels: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, inputs=np.asarray(inputs), labels=np.asarray(labels, np.int64))
        self._write_examples(checked_id(job_id), buffer.getvalue())

    def examples(self, job_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The examples uploaded with job `job_id` (inputs, labels), or None when it has none (or no more)."""
        data = self._read_examples(checked_id(job_id))
        if data is None:
            return None
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return arrays["inputs"], arrays["labels"]

    def discard_data(self, job_id: str) -> None:
        self._discard_examples(checked_id(job_id))


def checked_id(job_id: str) -> str:
    """A job id as this service makes them, never a path or a key of something else."""
    if not JOB_ID.match(job_id):
        raise JobNotFound(f"no job {job_id!r}: job ids are 32 hexadecimal characters")
    return job_id


class ExamplesInFolder:
    """A job's examples as a file `<folder>/<job id>.npz`, written whole (a temporary file renamed). The
    ids come checked by JobRecords (checked_id), so they are never a path of something else."""

    uploads_dir: Path

    def data_path(self, job_id: str) -> Path:
        return self.uploads_dir / f"{job_id}.npz"

    def _write_examples(self, job_id: str, data: bytes) -> None:
        path = self.data_path(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{TEMP_PREFIX}{path.name}")
        try:
            with open(temp, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)  # a reader sees the whole file or none
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _read_examples(self, job_id: str) -> bytes | None:
        try:
            return self.data_path(job_id).read_bytes()
        except FileNotFoundError:
            return None

    def _discard_examples(self, job_id: str) -> None:
        self.data_path(job_id).unlink(missing_ok=True)


def _body(job: Job) -> str:
    return job.model_dump_json(exclude=NOT_STORED)


def _job(body: str | bytes, sequence: int) -> Job:
    return Job.model_validate({**json.loads(body), "sequence": int(sequence)})


class SqliteJobRecords(ExamplesInFolder, JobRecords):
    """Jobs in a table of one SQLite file (WAL: readers never wait for the writer), their examples in
    files of `uploads_dir`. For one machine: SQLite's locking is not safe on a network filesystem (use
    RedisJobRecords there)."""

    def __init__(self, path: Path, uploads_dir: Path) -> None:
        self.uploads_dir = Path(uploads_dir)  # created on first write, so importing the app writes nothing
        self.path = Path(path)
        self._local = threading.local()  # a connection per thread (and per process: see _connection)

    def _connection(self) -> sqlite3.Connection:
        if getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("pragma journal_mode=wal")
            connection.execute(
                "create table if not exists jobs (sequence integer primary key autoincrement,"
                " id text unique not null, status text not null, kind text not null, body text not null)"
            )
            self._local.connection, self._local.pid = connection, os.getpid()
        return self._local.connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("begin immediate")  # the write lock now: the read that follows stays true
        try:
            yield connection
        except BaseException:
            connection.execute("rollback")
            raise
        connection.execute("commit")

    def _insert(self, job: Job, unless_pending: bool) -> Job:
        with self._transaction() as db:
            if unless_pending:
                rows = db.execute(
                    "select body, sequence from jobs where kind = ? and status not in (?, ?) order by sequence",
                    (job.kind, *FINISHED),
                )
                pending = next((found for found in (_job(*row) for row in rows) if found.model == job.model), None)
                if pending is not None:
                    return pending
            cursor = db.execute(
                "insert into jobs (id, status, kind, body) values (?, ?, ?, ?)",
                (job.id, job.status, job.kind, _body(job)),
            )
            return job.model_copy(update={"sequence": cursor.lastrowid})

    def get(self, job_id: str) -> Job:
        row = self._connection().execute("select body, sequence from jobs where id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id!r}")
        return _job(*row)

    def all(self) -> list[Job]:
        return [_job(*row) for row in self._connection().execute("select body, sequence from jobs order by sequence")]

    def count(self, status: JobStatus) -> int:
        return self._connection().execute("select count(*) from jobs where status = ?", (status,)).fetchone()[0]

    def update(self, job_id: str, when: Condition | None = None, **changes: Any) -> Job:
        with self._transaction() as db:
            row = db.execute("select body, sequence from jobs where id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(f"no job {job_id!r}")
            job = _job(*row)
            if when is not None and not when(job):
                return job
            job = job.model_copy(update=changes)
            db.execute("update jobs set status = ?, body = ? where id = ?", (job.status, _body(job), job_id))
            return job

    def remove(self, job_ids: list[str]) -> None:
        with self._transaction() as db:
            db.executemany("delete from jobs where id = ?", [(job_id,) for job_id in job_ids])


# INCR, the job and its place in the order in one step (a job numbered lower but written later
# would otherwise appear after a higher one, and run after it); with ARGV[3], only if no job of
# that kind is unfinished (the first training, which two API processes starting together ask for).
SUBMIT = """
if ARGV[3] ~= '' then
    local pending = redis.call('GET', KEYS[4])
    local body = pending and redis.call('GET', KEYS[5] .. pending)
    if body then
        local status = cjson.decode(body)['status']
        if status ~= 'succeeded' and status ~= 'failed' then
            return {body, redis.call('ZSCORE', KEYS[2], pending)}
        end
    end
    redis.call('SET', KEYS[4], ARGV[1])
end
local sequence = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[2], sequence, ARGV[1])
return {ARGV[2], sequence}
"""


class RedisJobRecords(JobRecords):
    """Jobs in Redis, beside the queue: `<prefix>:job:<id>` holds a job, `<prefix>:jobs` orders them,
    `<prefix>:job-examples:<id>` its uploaded examples (an .npz, bounded by the upload limit)."""

    def __init__(self, client: redis.Redis, prefix: str = "workshop") -> None:
        self.client = client
        self.prefix = prefix
        self.order_key = f"{prefix}:jobs"
        self.sequence_key = f"{prefix}:jobs:sequence"
        self._submit = client.register_script(SUBMIT)

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def _examples_key(self, job_id: str) -> str:
        return f"{self.prefix}:job-examples:{job_id}"  # checked by JobRecords

    def _write_examples(self, job_id: str, data: bytes) -> None:
        self.client.set(self._examples_key(job_id), data)

    def _read_examples(self, job_id: str) -> bytes | None:
        return self.client.get(self._examples_key(job_id))

    def _discard_examples(self, job_id: str) -> None:
        self.client.delete(self._examples_key(job_id))

    def _insert(self, job: Job, unless_pending: bool) -> Job:
        keys = [
            self.sequence_key,
            self.order_key,
            self._key(job.id),
            f"{self.prefix}:pending:{job.kind}:{job.model or ''}",
            f"{self.prefix}:job:",
        ]
        body, sequence = self._submit(keys=keys, args=[job.id, _body(job), "1" if unless_pending else ""])
        return _job(body, int(float(sequence)))

    def get(self, job_id: str) -> Job:
        with self.client.pipeline(transaction=False) as pipe:
            body, sequence = pipe.get(self._key(job_id)).zscore(self.order_key, job_id).execute()
        if body is None or sequence is None:
            raise JobNotFound(f"no job {job_id!r}")
        return _job(body, sequence)

    def all(self) -> list[Job]:
        ordered = self.client.zrange(self.order_key, 0, -1, withscores=True)
        if not ordered:
            return []
        bodies = self.client.mget([self._key(job_id.decode()) for job_id, _ in ordered])
        return [_job(body, sequence) for (_, sequence), body in zip(ordered, bodies, strict=True) if body is not None]

    def update(self, job_id: str, when: Condition | None = None, **changes: Any) -> Job:
        key = self._key(job_id)
        result: list[Job] = []

        def read_modify_write(pipe: redis.client.Pipeline) -> None:  # run again if another writer came between
            body, sequence = pipe.get(key), pipe.zscore(self.order_key, job_id)
            if body is None or sequence is None:
                raise JobNotFound(f"no job {job_id!r}")
            job = _job(body, sequence)
            if when is None or when(job):
                job = job.model_copy(update=changes)
                pipe.multi()
                pipe.set(key, _body(job))
            result[:] = [job]

        self.client.transaction(read_modify_write, key)
        return result[0]

    def remove(self, job_ids: list[str]) -> None:
        with self.client.pipeline() as pipe:
            pipe.zrem(self.order_key, *job_ids).delete(*(self._key(job_id) for job_id in job_ids)).execute()
