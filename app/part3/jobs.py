"""Training jobs, kept as one JSON file each under <models dir>/.jobs/, so every worker sees them.

    .jobs/<id>.json    the job (written whole to a temporary file, then renamed: readers never see half)
    .jobs/<id>.npz     its decoded training images and labels, written before the job is visible
    .jobs/<id>.lock    held by the trainer process while it runs: a free lock on a "running" job
                       means its trainer is gone
    .jobs/<id>.log     the trainer's output, whose last line explains a crash

Job ids are random hex strings made here: an uploaded file name never becomes a path.
"""

import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from filelock import FileLock
from pydantic import BaseModel, ValidationError, computed_field

JobKind = Literal["fine-tune", "retrain", "initial"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
FINISHED: tuple[JobStatus, ...] = ("succeeded", "failed")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
TEMP_PREFIX = ".tmp-"


class JobNotFound(LookupError):
    """No job with this id."""


class Job(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus = "queued"
    sequence: int  # submission order across workers (nanoseconds since the epoch, unique per worker)
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    epochs: int
    epoch: int = 0  # epochs completed so far
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    n_images: int = 0  # uploaded images (a retrain adds the base data set to them)
    parent: int | None = None  # the version a fine-tune started from
    version: int | None = None  # the version the job published
    metrics: dict[str, Any] | None = None
    promoted: bool | None = None  # whether the promotion gate let the new version serve
    gate_reason: str | None = None  # the gate's decision in plain words
    error: str | None = None
    worker_pid: int | None = None
    trainer_pid: int | None = None

    @computed_field
    @property
    def progress(self) -> str:
        if self.status == "running":
            return f"epoch {self.epoch} of {self.epochs}"
        if self.status == "succeeded":
            if self.promoted is False:
                return f"published version {self.version}, not promoted: {self.gate_reason}"
            return f"published version {self.version}"
        if self.status == "failed":
            return f"failed: {self.error}"
        return "waiting for the jobs before it"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def now() -> datetime:
    return datetime.now(UTC)


class JobStore:
    """The jobs in one folder; safe to use from many threads and processes at once."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)  # created on first write, so importing the app writes nothing
        self._last_sequence = 0
        self._sequence_lock = threading.Lock()

    # -- paths: only ever built from ids this module made and checked --------------------------
    def _folder(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder

    def _path(self, job_id: str, suffix: str) -> Path:
        if not JOB_ID.match(job_id):
            raise JobNotFound(f"no job {job_id!r}: job ids are 32 hexadecimal characters")
        return self.folder / f"{job_id}{suffix}"

    def data_path(self, job_id: str) -> Path:
        return self._path(job_id, ".npz")

    def log_path(self, job_id: str) -> Path:
        return self._path(job_id, ".log")

    def job_lock(self, job_id: str) -> FileLock:
        self._folder()
        return FileLock(self._path(job_id, ".lock"))

    def forget_lock(self, job_id: str) -> None:
        """Remove a finished job's lock file (nothing locks a finished job again)."""
        self._path(job_id, ".lock").unlink(missing_ok=True)

    def runner_lock(self) -> FileLock:
        """Held by the one worker that runs jobs; released by the kernel if that worker dies."""
        return FileLock(self._folder() / ".runner.lock")

    def submit_lock(self) -> FileLock:
        """Held while deciding whether to submit a job nobody else may submit twice (the first one)."""
        return FileLock(self._folder() / ".submit.lock")

    # -- reading ------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        try:
            return Job.model_validate_json(self._path(job_id, ".json").read_bytes())
        except FileNotFoundError:
            raise JobNotFound(f"no job {job_id!r}") from None

    def all(self) -> list[Job]:
        """Every job, in submission order."""
        jobs = []
        for path in self.folder.glob("*.json"):
            if path.name.startswith(TEMP_PREFIX):
                continue
            try:
                jobs.append(Job.model_validate_json(path.read_bytes()))
            except (FileNotFoundError, ValidationError, ValueError):
                continue  # removed meanwhile, or not a job: a reader never fails on one file
        return sorted(jobs, key=lambda job: (job.sequence, job.id))

    def next_queued(self) -> Job | None:
        return next((job for job in self.all() if job.status == "queued"), None)

    def count(self, status: JobStatus) -> int:
        return sum(job.status == status for job in self.all())

    def load_data(self, job: Job) -> tuple[np.ndarray, np.ndarray] | None:
        path = self.data_path(job.id)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            return data["images"], data["labels"]

    def log_tail(self, job_id: str, lines: int = 1) -> str:
        try:
            text = self.log_path(job_id).read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- writing ------------------------------------------------------------------------------
    def _write_atomically(self, path: Path, write) -> None:
        temp = self._folder() / f"{TEMP_PREFIX}{uuid.uuid4().hex}-{path.name}"
        try:
            with open(temp, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def save(self, job: Job) -> Job:
        self._write_atomically(self._path(job.id, ".json"), lambda file: file.write(job.model_dump_json(indent=2).encode()))
        return job

    def update(self, job_id: str, **changes: Any) -> Job:
        """Re-read the job and write it back with `changes` (one writer at a time per job: see runner)."""
        return self.save(self.get(job_id).model_copy(update=changes))

    def _next_sequence(self) -> int:
        with self._sequence_lock:
            self._last_sequence = max(time.time_ns(), self._last_sequence + 1)
            return self._last_sequence

    def submit(
        self,
        kind: JobKind,
        epochs: int,
        images: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> Job:
        """Queue a job; its decoded images are stored first, so a visible job always has its data."""
        job_id = uuid.uuid4().hex
        if images is not None and labels is not None:
            self._write_atomically(
                self.data_path(job_id),
                lambda file: np.savez(file, images=np.asarray(images, np.uint8), labels=np.asarray(labels, np.int64)),
            )
        # Numbered and made visible under one lock, so jobs appear in sequence order: a job submitted
        # at the same time, numbered lower but written later, would otherwise run after a higher one.
        with FileLock(self._folder() / ".sequence.lock"):
            job = Job(
                id=job_id,
                kind=kind,
                sequence=self._next_sequence(),
                submitted_at=now(),
                epochs=epochs,
                n_images=0 if labels is None else len(labels),
            )
            return self.save(job)

    def discard_data(self, job_id: str) -> None:
        self.data_path(job_id).unlink(missing_ok=True)

    def prune(self, keep: int) -> list[str]:
        """Remove every file of the oldest finished jobs beyond the newest `keep` finished ones;
        returns their ids. Without it the folder grows with every training, and each listing (GET
        /jobs/, /metrics) reads all of it. Queued and running jobs are never touched."""
        finished = [job for job in self.all() if job.finished]
        removed = finished[: max(0, len(finished) - keep)]
        for job in removed:
            for suffix in (".npz", ".log", ".lock", ".json"):  # the record last: it is what lists the job
                self._path(job.id, suffix).unlink(missing_ok=True)
        return [job.id for job in removed]

    def clean_temporary(self, older_than: float = 3600.0) -> None:
        """Remove temporary files a crash left behind (old enough that no writer still owns them)."""
        limit = time.time() - older_than
        for path in self.folder.glob(f"{TEMP_PREFIX}*"):
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
            except FileNotFoundError:
                pass
